"""Search in three modes, with citations joined from the catalog.

- `dense`: the query's embedding against the vector index (cosine similarity).
- `lexical`: BM25 over the documents' published terms (see `lexical.py`).
- `hybrid` (the default): both candidate lists, each min-max normalised to [0, 1] over its own
  top `FUSION_DEPTH`, then a weighted sum; a chunk missing from one list scores 0 there.
  The dense weight is `DENSE_WEIGHT`, scaled down by the share of the query written in
  scripts the English-only embedding model reads poorly (Han, Kana, Hangul, ...), so a
  Japanese or Korean query leans on its character bigrams. The weight and depth were tuned on
  half of the SQuAD questions and checked on the other half (`make eval`, bench/eval.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rag_pipeline.core.catalog import Catalog
from rag_pipeline.core.embedding import Embedder
from rag_pipeline.core.index import VectorIndex
from rag_pipeline.core.lexical import LexicalIndex
from rag_pipeline.core.terms import unspaced_share

DENSE_WEIGHT = 0.5
FUSION_DEPTH = 50

Key = tuple[str, int]


class SearchMode(StrEnum):
    DENSE = "dense"
    LEXICAL = "lexical"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SearchResult:
    document_id: str
    filename: str
    chunk_no: int
    page: int
    char_start: int
    char_end: int
    score: float
    text: str


def _normalised(ranked: Sequence[tuple[Key, float]]) -> dict[Key, float]:
    if not ranked:
        return {}
    scores = [score for _, score in ranked]
    low, high = min(scores), max(scores)
    if high - low < 1e-9:
        return {key: 1.0 for key, _ in ranked}
    return {key: (score - low) / (high - low) for key, score in ranked}


def fuse(
    dense: Sequence[tuple[Key, float]],
    lexical: Sequence[tuple[Key, float]],
    dense_weight: float = DENSE_WEIGHT,
) -> list[tuple[Key, float]]:
    """Weighted sum of min-max normalised scores, best first; ties go to the dense order."""
    d, lx = _normalised(dense), _normalised(lexical)
    order: dict[Key, int] = {}
    for key in [*d, *lx]:
        order.setdefault(key, len(order))
    fused = {
        key: dense_weight * d.get(key, 0.0) + (1.0 - dense_weight) * lx.get(key, 0.0)
        for key in order
    }
    return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))


def query_dense_weight(query: str, dense_weight: float = DENSE_WEIGHT) -> float:
    return dense_weight * (1.0 - unspaced_share(query))


def ranked(
    query: str,
    *,
    k: int,
    mode: SearchMode,
    embedder: Embedder,
    index: VectorIndex,
    lexicon: LexicalIndex,
    dense_weight: float = DENSE_WEIGHT,
    depth: int = FUSION_DEPTH,
) -> list[tuple[Key, float]]:
    """The k best (document id, chunk number) keys with their scores, best first."""
    if not query.strip():
        raise ValueError("the query is empty")
    if k < 1:
        raise ValueError("k must be at least 1")
    pool = max(k, depth) if mode is SearchMode.HYBRID else k
    dense: list[tuple[Key, float]] = []
    lexical: list[tuple[Key, float]] = []
    if mode is not SearchMode.LEXICAL:
        hits = index.query(embedder.embed([query])[0], pool)
        dense = [((h.document_id, h.chunk_no), h.score) for h in hits]
    if mode is not SearchMode.DENSE:
        lexical = [((h.document_id, h.chunk_no), h.score) for h in lexicon.query(query, pool)]
    if mode is SearchMode.DENSE:
        return dense[:k]
    if mode is SearchMode.LEXICAL:
        return lexical[:k]
    return fuse(dense, lexical, query_dense_weight(query, dense_weight))[:k]


def search(
    query: str,
    *,
    k: int,
    mode: SearchMode = SearchMode.HYBRID,
    embedder: Embedder,
    index: VectorIndex,
    lexicon: LexicalIndex,
    catalog: Catalog,
) -> list[SearchResult]:
    keys = ranked(query, k=k, mode=mode, embedder=embedder, index=index, lexicon=lexicon)
    rows = catalog.chunk_rows([key for key, _ in keys])
    return [
        SearchResult(
            document_id=row.document_id,
            filename=row.filename,
            chunk_no=row.chunk_no,
            page=row.page,
            char_start=row.char_start,
            char_end=row.char_end,
            score=round(score, 6),
            text=row.text,
        )
        for key, score in keys
        # A chunk whose document was deleted between ranking and the join is not a result.
        if (row := rows.get(key)) is not None
    ]
