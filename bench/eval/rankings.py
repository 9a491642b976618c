"""The retrieval evaluation's rankings: every query's candidate lists per mode, computed once
from the ingested store (`Searcher`), and the fusions redone from them (hybrid, phrased, rrf)."""

import os
import unicodedata
from collections.abc import Callable, Sequence

from bench.harness.stack import MODEL

MODES = ("dense", "lexical", "hybrid")
POOL = 100
Key = tuple[str, int]


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class Searcher:
    """Candidate lists per mode for every query, computed once; fusion is redone from them."""

    def __init__(self, model: str = MODEL) -> None:
        from rag_pipeline.core.retrieval.lexical import LexicalIndex
        from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
        from rag_pipeline.core.stages.embedders import get_embedder
        from rag_pipeline.core.storage.catalog import Catalog
        from rag_pipeline.core.storage.data_dir import DocumentStore

        store = DocumentStore(os.environ["RAG_DATA_DIR"])
        self.store = store
        self.embedder = get_embedder(model)
        self.index = VectorIndex(
            connect(os.environ["RAG_CHROMA_URL"]), os.environ["RAG_CHROMA_COLLECTION"]
        )
        self.catalog = Catalog(store)
        self.lexicon_for: Callable[..., LexicalIndex] = lambda **kw: LexicalIndex(store, **kw)
        self.lexicon = self.lexicon_for()
        _, rows = self.catalog.query(
            "SELECT document_id, chunk_no, filename, text FROM chunks JOIN documents "
            "USING (document_id)"
        )
        self.chunks = {(d, n): (f, nfkc(t)) for d, n, f, t in rows}
        self.texts = {key: text for key, (_, text) in self.chunks.items()}

    def dense(self, queries: Sequence[str]) -> list[list[tuple[Key, float]]]:
        vectors = [self.embedder.embed_query(query) for query in queries]
        return [
            [((h.document_id, h.chunk_no), h.score) for h in self.index.query(v, POOL)]
            for v in vectors
        ]

    def lexical(self, queries: Sequence[str], **bm25: float) -> list[list[tuple[Key, float]]]:
        lexicon = self.lexicon_for(**bm25) if bm25 else self.lexicon
        return [
            [((h.document_id, h.chunk_no), h.score) for h in lexicon.query(q, POOL)]
            for q in queries
        ]


def hybrid(
    queries: Sequence[str],
    dense: Sequence[Sequence[tuple[Key, float]]],
    lexical: Sequence[Sequence[tuple[Key, float]]],
    weight: float,
    depth: int,
    multilingual: bool = False,
) -> list[list[Key]]:
    from rag_pipeline.core.retrieval.search import fuse, query_dense_weight

    return [
        [key for key, _ in fuse(d[:depth], lx[:depth], query_dense_weight(q, weight, multilingual))]
        for q, d, lx in zip(queries, dense, lexical, strict=True)
    ]


def phrased(
    queries: Sequence[str], ranked: Sequence[Sequence[Key]], texts: dict[Key, str]
) -> list[list[Key]]:
    """What search() does after ranking in lexical and hybrid modes: verbatim matches first."""
    from rag_pipeline.core.retrieval.search import PHRASE_POOL, phrases_first

    out = []
    for q, keys_ in zip(queries, ranked, strict=True):
        top = phrases_first(q, [(k, 0.0) for k in keys_[:PHRASE_POOL]], texts)
        out.append([k for k, _ in top] + list(keys_[PHRASE_POOL:]))
    return out


def rrf(
    dense: Sequence[Sequence[tuple[Key, float]]],
    lexical: Sequence[Sequence[tuple[Key, float]]],
    k: int = 60,
) -> list[list[Key]]:
    """Reciprocal rank fusion, scored beside our fusion for comparison."""
    ranked = []
    for d, lx in zip(dense, lexical, strict=True):
        scores: dict[Key, float] = {}
        for hits in (d, lx):
            for rank, (key, _) in enumerate(hits, 1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
        ranked.append(sorted(scores, key=lambda key: -scores[key]))
    return ranked


def keys(lists: Sequence[Sequence[tuple[Key, float]]]) -> list[list[Key]]:
    return [[key for key, _ in hits] for hits in lists]
