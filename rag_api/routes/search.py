"""Search over the index: hybrid (dense + lexical) by default, with citations from the catalog,
within the collections the key may read, narrowed by a metadata filter."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from rag_api.deps import (
    INDEX_UNAVAILABLE,
    CatalogDep,
    FacetsDep,
    LexiconDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
    get_index,
    get_model,
    index_unavailable,
)
from rag_api.errors import ApiError
from rag_api.metrics import Metrics
from rag_api.routes.documents.records import scoped_collections
from rag_api.schemas import (
    FILTER_HELP,
    SEARCH_MODE_HELP,
    ErrorResponse,
    SearchHit,
    SearchIn,
    SearchResponse,
)
from rag_pipeline.core.registry import Collection
from rag_pipeline.core.retrieval.facets import Facets
from rag_pipeline.core.retrieval.filters import compile_filter
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.search import Scope, SearchMode, SearchResult, search
from rag_pipeline.core.retrieval.vector_index import IndexUnavailable, VectorIndex
from rag_pipeline.core.stages.embedders import EmbeddingError
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.api_keys import Principal
from rag_pipeline.settings import Settings

router = APIRouter(tags=["search"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 404, 422, 503)
}


class Searcher:
    """What a search request needs, as one dependency of both routes."""

    def __init__(
        self,
        request: Request,
        settings: SettingsDep,
        store: StoreDep,
        principal: PrincipalDep,
        lexicon: LexiconDep,
        catalog: CatalogDep,
        facets: FacetsDep,
    ) -> None:
        self.request = request
        self.settings: Settings = settings
        self.store: DocumentStore = store
        self.principal: Principal = principal
        self.lexicon: LexicalIndex = lexicon
        self.catalog: Catalog = catalog
        self.facets: Facets = facets


SearcherDep = Annotated[Searcher, Depends()]


@router.get("/search", response_model=SearchResponse, responses=_RESPONSES)
def search_chunks(
    q: Annotated[str, Query(min_length=1, max_length=2000, description="The query")],
    searcher: SearcherDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many chunks")] = 5,
    mode: Annotated[SearchMode, Query(description=SEARCH_MODE_HELP)] = SearchMode.HYBRID,
    collection: Annotated[
        list[str] | None,
        Query(description="search these collections (repeatable); default: all the key may read"),
    ] = None,
    filter: Annotated[str | None, Query(description=f"JSON: {FILTER_HELP}")] = None,
) -> SearchResponse:
    """The top k chunks for a query, best first, each with its document, page and offsets.

    Collections and the filter narrow the search before the top k are cut, in every mode: k
    hits come back whenever k matching chunks exist. If the vector index cannot answer,
    `hybrid` falls back to `lexical` and says so in `degraded` (and `mode` says what was
    served); `dense` answers 503.
    """
    return _search(q, k, mode, collection, compile_filter(filter), searcher)


@router.post("/search", response_model=SearchResponse, responses=_RESPONSES)
def search_chunks_by_body(body: SearchIn, searcher: SearcherDep) -> SearchResponse:
    """`GET /search` with a JSON body: `q`, `k`, `mode`, `collections` and `filter` (an
    object here, not a string)."""
    return _search(
        body.q, body.k, body.mode, body.collections, compile_filter(body.filter), searcher
    )


def _search(
    q: str,
    k: int,
    mode: SearchMode,
    wanted: list[str] | None,
    where: Any,
    it: Searcher,
) -> SearchResponse:
    if not q.strip():
        raise ApiError(422, "invalid_query", "the query is blank")
    started = time.perf_counter()
    every = it.store.registry.tenancy.collections()
    names = scoped_collections(it.store, it.principal, wanted)
    homes = every if names is None else [c for c in every if c.name in set(names)]
    # Unrestricted only for a key over every collection that names none. A list of names never
    # is, even one that covers every collection there is: one made while this query runs
    # would get in through the lexical index.
    scope = it.facets.scope(homes, where, everything=names is None)
    served, degraded = mode, None
    index: VectorIndex | None = None
    try:
        if mode is not SearchMode.LEXICAL:
            index = get_index(it.request, it.settings)
        try:
            results = _ranked(q, k, mode, homes, scope, index, it)
        except IndexUnavailable:
            # A model switch swapped a collection between reading it and asking its old
            # index, which is gone now: once more, with the generation it serves.
            moved = _swapped(it, homes)
            if moved is None:
                raise
            homes, scope = moved, it.facets.scope(moved, where, everything=names is None)
            results = _ranked(q, k, mode, homes, scope, index, it)
    except (IndexUnavailable, ApiError, EmbeddingError) as exc:
        # The failure's own text may name hosts or carry a URL: it goes to the log only.
        failed = exc if isinstance(exc, ApiError) else index_unavailable(exc)
        if mode is not SearchMode.HYBRID:
            raise failed from exc
        served, degraded = SearchMode.LEXICAL, f"lexical results only: {INDEX_UNAVAILABLE}"
        results = search(
            q,
            k=k,
            mode=served,
            embedder=None,
            index=None,
            lexicon=it.lexicon,
            catalog=it.catalog,
            scope=scope,
        )
    answer = SearchResponse(
        query=q,
        k=k,
        mode=served,
        degraded=degraded,
        results=[_hit(result, it) for result in results],
    )
    metrics: Metrics = it.request.app.state.metrics
    metrics.search_seconds.labels(served.value).observe(time.perf_counter() - started)
    return answer


def _ranked(
    q: str,
    k: int,
    mode: SearchMode,
    homes: list[Collection],
    scope: Scope,
    index: VectorIndex | None,
    it: Searcher,
) -> list[SearchResult]:
    lexical = mode is SearchMode.LEXICAL
    return search(
        q,
        k=k,
        mode=mode,
        embedder=None if lexical else get_model(it.settings),
        index=index,
        lexicon=it.lexicon,
        catalog=it.catalog,
        scope=scope,
        embedders=None
        if lexical
        else {c.name: get_model(it.settings, c.model(it.settings.embedding_model)) for c in homes},
    )


def _swapped(it: Searcher, homes: list[Collection]) -> list[Collection] | None:
    """The collections as they are now, if one of them serves another generation since."""
    names = {home.name for home in homes}
    now = [c for c in it.store.registry.tenancy.collections() if c.name in names]
    served = {(c.name, c.index_suffix) for c in now}
    return now if served != {(h.name, h.index_suffix) for h in homes} else None


def _hit(result: SearchResult, it: Searcher) -> SearchHit:
    facet = it.facets.facet(result.document_id)
    if facet is not None:
        collection, metadata = facet.collection, facet.metadata
    else:  # indexed after the scope was read: the registry knows it
        doc = it.store.registry.reads.get(result.document_id)
        collection, metadata = (doc.collection, doc.metadata) if doc else ("", {})
    return SearchHit(**result.__dict__, collection=collection, metadata=metadata)
