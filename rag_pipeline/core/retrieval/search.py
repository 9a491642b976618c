"""Search in three modes, with citations joined from the catalog.

- `dense`: the query's embedding against the vector index (cosine similarity).
- `lexical`: BM25 over the documents' published terms (see `lexical.py`).
- `hybrid` (the default): both candidate lists, each min-max normalised to [0, 1] over its own
  top `FUSION_DEPTH`, then a weighted sum; a chunk missing from one list scores 0 there.
  The dense weight is `DENSE_WEIGHT`, scaled down by the share of the query written in
  scripts the English-only embedding model reads poorly (Han, Kana, Hangul, ...), so a
  Japanese or Korean query leans on its character bigrams. The weight and depth were tuned on
  half of the SQuAD questions and checked on the other half (`make eval`, bench/eval/).

In `lexical` and `hybrid`, chunks among the top `PHRASE_POOL` that contain the whole query
verbatim (case and spacing aside) then move ahead of the rest, keeping their order.

Each collection's vectors come from its own embedding model, so the query is embedded once per
model searched (`embedders`, by collection). Scores of different models are not comparable:
when the collections searched use more than one model, their dense lists are fused by rank
(reciprocal rank fusion, `RRF_K`), never by raw score; one model keeps its cosine scores.

A `Scope` says where to look: which collections (each has its own vector index) and, when a
filter or a key's collections narrow it, which of their documents. It applies before the top
k are cut, in every mode: the vector index is asked for the nearest chunks of those documents
alone, and lexical scoring leaves the others out.
"""

import math
import unicodedata
from collections.abc import Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.terms import unspaced_share
from rag_pipeline.core.retrieval.vector_index import Hit, IndexUnavailable, VectorIndex
from rag_pipeline.core.stages.embedders import Embedder
from rag_pipeline.core.storage.catalog import Catalog

DENSE_WEIGHT = 0.4
FUSION_DEPTH = 20
PHRASE_POOL = 20
# Dense search under a filter over-fetches unfiltered, at most this many chunks, before it asks
# the index with the filter (see `overfetch_sizes`).
OVERFETCH_MAX = 1000
# Reciprocal rank fusion's constant (60, as in Cormack et al. and most engines).
RRF_K = 60

Key = tuple[str, int]
# Queries to several collections' indexes go out together; Chroma's client is thread-safe.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="index-query")


class SearchMode(StrEnum):
    DENSE = "dense"
    LEXICAL = "lexical"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class Part:
    """One collection's share of a search: its index, and its documents to look at (`only`)
    or to leave out (`excluding`); neither means all of them."""

    collection: str
    index_suffix: str
    only: Set[str] | None = None
    excluding: Set[str] | None = None
    # The share of the collection's documents it admits, when a filter narrows it.
    share: float | None = None

    def lets_in(self, doc_id: str) -> bool:
        if self.only is not None:
            return doc_id in self.only
        return self.excluding is None or doc_id not in self.excluding


@dataclass(frozen=True)
class Scope:
    """Where a search looks: one part per collection, and every document it admits (None:
    every document there is, no lexical restriction)."""

    parts: Sequence[Part]
    documents: Set[str] | None = None

    def admits(self, doc_id: str) -> bool:
        return self.documents is None or doc_id in self.documents


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


def by_rank(answers: Sequence[Sequence[Hit]]) -> list[tuple[Key, float]]:
    """Lists from different vector spaces, each best first, fused by rank alone: a hit scores
    1 / (RRF_K + its rank), so the n-th of every list ties, whatever its raw score."""
    fused = [
        ((hit.document_id, hit.chunk_no), 1.0 / (RRF_K + rank))
        for answer in answers
        for rank, hit in enumerate(answer, start=1)
    ]
    return sorted(fused, key=lambda item: -item[1])


def query_dense_weight(
    query: str, dense_weight: float = DENSE_WEIGHT, multilingual: bool = False
) -> float:
    """The dense side's weight for this query. A model trained on English reads unspaced
    (Chinese, Japanese) text as noise, so its weight falls with the query's unspaced share; a
    multilingual model keeps its full weight (with multilingual-e5-small, dense found the
    right document in the top 5 for 0.926 of the CJK questions, lexical for 0.853)."""
    return dense_weight if multilingual else dense_weight * (1.0 - unspaced_share(query))


def squash(text: str) -> str:
    """Text as phrase matching sees it: NFKC, case-folded, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def phrases_first(
    query: str, ranked: Sequence[tuple[Key, float]], texts: Mapping[Key, str]
) -> list[tuple[Key, float]]:
    """Chunks that contain the query verbatim go first, in their order; then the rest.

    Terms match one by one, so a chunk repeating the query's words apart can outscore the
    chunk that holds them as one phrase; someone pasting a phrase wants that chunk.
    """
    phrase = squash(query)
    return sorted(ranked, key=lambda item: phrase not in squash(texts.get(item[0], "")))


def overfetch_sizes(wanted: int, share: float | None) -> list[int]:
    """How many nearest chunks to ask for, unfiltered, in turn, to find `wanted` chunks of a
    filter that admits `share` of a collection's documents; none when even OVERFETCH_MAX
    would hold fewer on average (a selective filter: ask with it at once)."""
    if share is None or share * OVERFETCH_MAX < wanted:
        return []
    first = min(OVERFETCH_MAX, math.ceil(wanted / share * 2))
    return [first] if first >= OVERFETCH_MAX else [first, OVERFETCH_MAX]


def candidates(
    query: str,
    *,
    pool: int,
    mode: SearchMode,
    embedder: Embedder | None,
    index: VectorIndex | None,
    lexicon: LexicalIndex,
    scope: Scope | None = None,
    dense_weight: float = DENSE_WEIGHT,
    depth: int = FUSION_DEPTH,
    embedders: Mapping[str, Embedder] | None = None,
) -> list[tuple[Key, float]]:
    """The best `pool` (document id, chunk number) keys by score, before phrase matching;
    without a scope, in the configured collection's index and every document's terms."""
    dense: list[tuple[Key, float]] = []
    lexical: list[tuple[Key, float]] = []
    wanted = max(pool, depth)
    multilingual = False
    if mode is not SearchMode.LEXICAL:
        parts = scope.parts if scope is not None else [Part("", "")]
        asked = [p for p in parts if p.only is None or p.only]
        own_models = embedders or {}
        models = {p.collection: own_models.get(p.collection, embedder) for p in asked}
        if index is None or None in models.values():
            raise IndexUnavailable(f"{mode} search needs the vector index and the model")
        multilingual = all(m is not None and m.multilingual for m in models.values())
        vectors = {
            model.model_name: model.embed_query(query)
            for model in {m.model_name: m for m in models.values() if m is not None}.values()
        }
        root = index

        def nearest(part: Part) -> list[Hit]:
            model = models[part.collection]
            assert model is not None
            vector = vectors[model.model_name]
            own = root.of(part.index_suffix)
            # Under a filter, the collection's nearest chunks overall, enough of them to hold
            # `wanted` admitted ones twice over on average, are faster to ask for than a filter
            # over hundreds of ids (Chroma: 2 ms for 80 of 10,000 chunks, 8 ms for 1,000,
            # against 75 ms with a 99-id filter), and the admitted ones among them are exactly
            # the nearest admitted ones. Too few (the nearest cluster in documents left out):
            # once more at the most, then ask with the filter.
            for n in overfetch_sizes(wanted, part.share):
                hits = own.query(vector, n)
                kept = [hit for hit in hits if part.lets_in(hit.document_id)]
                if len(kept) >= wanted or len(hits) < n:
                    return kept[:wanted]
            return own.query(vector, wanted, only=part.only, excluding=part.excluding)

        # Each collection's index answers on its own: ask them at once, not one after another.
        answers = _POOL.map(nearest, asked) if len(asked) > 1 else map(nearest, asked)
        if len(vectors) > 1:
            dense = by_rank(list(answers))[:wanted]
        else:
            hits = [hit for answer in answers for hit in answer]
            hits.sort(key=lambda h: -h.score)
            dense = [((h.document_id, h.chunk_no), h.score) for h in hits[:wanted]]
    if mode is not SearchMode.DENSE:
        allowed = scope.documents if scope is not None else None
        lexical = [
            ((h.document_id, h.chunk_no), h.score)
            for h in lexicon.query(query, wanted, allowed=allowed)
        ]
    if mode is SearchMode.DENSE:
        return dense[:pool]
    if mode is SearchMode.LEXICAL:
        return lexical[:pool]
    weight = query_dense_weight(query, dense_weight, multilingual)
    return fuse(dense[:depth], lexical[:depth], weight)[:pool]


def search(
    query: str,
    *,
    k: int,
    mode: SearchMode = SearchMode.HYBRID,
    embedder: Embedder | None,
    index: VectorIndex | None,
    lexicon: LexicalIndex,
    catalog: Catalog,
    scope: Scope | None = None,
    embedders: Mapping[str, Embedder] | None = None,
) -> list[SearchResult]:
    """The k best chunks, best first, with citations; see the module's docstring for modes
    and scopes."""
    if not query.strip():
        raise ValueError("the query is empty")
    if k < 1:
        raise ValueError("k must be at least 1")
    # Phrase matching reorders the top of the list, so it needs the text of a deeper pool.
    pool = k if mode is SearchMode.DENSE else max(k, PHRASE_POOL)
    keys = candidates(
        query,
        pool=pool,
        mode=mode,
        embedder=embedder,
        index=index,
        lexicon=lexicon,
        scope=scope,
        embedders=embedders,
    )
    if scope is not None:
        # A document added to a collection while this query ran was not in its scope.
        keys = [(key, score) for key, score in keys if scope.admits(key[0])]
    rows = catalog.chunk_rows([key for key, _ in keys])
    if mode is not SearchMode.DENSE:
        keys = phrases_first(query, keys, {key: row.text for key, row in rows.items()})
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
    ][:k]
