"""`hash-384`: a deterministic embedder for tests and for benchmarks of everything but the model.

`hash-256` is the same in 256 dimensions: a second model, of another dimension, for tests of a
collection switching models.

Same text, same vector, nothing to load. It is registered like any plugin (the
`rag_ingest.embedders` entry point), so production code never names it.
"""

import hashlib
import re

import numpy as np

from rag_pipeline.core.stages.embedders import (
    IN_PROCESS,
    Embedder,
    Register,
    Vector,
    Vectors,
    bundled_model_dir,
    max_tokens_in,
)

HASH_MODEL = "hash-384"
SMALL_HASH_MODEL = "hash-256"

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Bag of hashed words, L2-normalised. Texts sharing words get similar vectors."""

    multilingual = False
    runs = IN_PROCESS

    def __init__(self, dimension: int = 384) -> None:
        self.model_name = f"hash-{dimension}"
        self._dimension = dimension
        # Chunks are cut with the bundled model's tokenizer, so they match the real model's.
        model_dir = bundled_model_dir()
        self.tokenizer_path = str(model_dir / "tokenizer.json")
        self.max_tokens = max_tokens_in(model_dir)

    @property
    def dimension(self) -> int:
        return self._dimension

    def use_threads(self, threads: int) -> None:
        return None

    def embed(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dimension
                out[row, index] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        normalised: Vectors = out / norms
        return normalised

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self.embed(texts)

    def embed_query(self, text: str) -> Vector:
        vector: Vector = self.embed([text])[0]
        return vector


def _build(batch_size: int) -> Embedder:
    return HashEmbedder()


def _build_small(batch_size: int) -> Embedder:
    return HashEmbedder(256)


def register_embedders(register: Register) -> None:
    register(HASH_MODEL, _build)
    register(SMALL_HASH_MODEL, _build_small)
