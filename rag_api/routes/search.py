"""Search over the index: hybrid (dense + lexical) by default, with citations from the catalog."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from rag_api.deps import CatalogDep, LexiconDep, SettingsDep, get_index, get_model
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, SearchHit, SearchResponse
from rag_pipeline.core.index import IndexUnavailable, VectorIndex
from rag_pipeline.core.search import SearchMode, search

router = APIRouter(tags=["search"])


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={code: {"model": ErrorResponse} for code in (401, 422, 503)},
)
def search_chunks(
    q: Annotated[str, Query(min_length=1, max_length=2000, description="The query")],
    request: Request,
    settings: SettingsDep,
    lexicon: LexiconDep,
    catalog: CatalogDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many chunks")] = 5,
    mode: Annotated[
        SearchMode,
        Query(
            description="hybrid: dense and lexical fused (default); dense: embeddings only; "
            "lexical: BM25 over terms only (needs neither the model nor the vector index)"
        ),
    ] = SearchMode.HYBRID,
) -> SearchResponse:
    """The top k chunks for a query, best first, each with its document, page and offsets.

    If the vector index cannot answer, `hybrid` falls back to `lexical` and says so in
    `degraded` (and `mode` says what was served); `dense` answers 503.
    """
    if not q.strip():
        raise ApiError(422, "invalid_query", "the query is blank")
    served, degraded = mode, None
    index: VectorIndex | None = None
    try:
        if mode is not SearchMode.LEXICAL:
            index = get_index(request, settings)
        results = search(
            q,
            k=k,
            mode=mode,
            embedder=None if mode is SearchMode.LEXICAL else get_model(settings),
            index=index,
            lexicon=lexicon,
            catalog=catalog,
        )
    except (IndexUnavailable, ApiError) as exc:
        if mode is not SearchMode.HYBRID:
            raise ApiError(503, "index_unavailable", str(exc)) from exc
        served, degraded = SearchMode.LEXICAL, f"lexical results only: {exc}"
        results = search(
            q, k=k, mode=served, embedder=None, index=None, lexicon=lexicon, catalog=catalog
        )
    return SearchResponse(
        query=q,
        k=k,
        mode=served,
        degraded=degraded,
        results=[SearchHit(**result.__dict__) for result in results],
    )
