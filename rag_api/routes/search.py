"""Search over the index: hybrid (dense + lexical) by default, with citations from the catalog."""

from typing import Annotated

from fastapi import APIRouter, Query

from rag_api.deps import CatalogDep, IndexDep, LexiconDep, ModelDep
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse, SearchHit, SearchResponse
from rag_pipeline.core.index import IndexUnavailable
from rag_pipeline.core.search import SearchMode, search

router = APIRouter(tags=["search"])


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={code: {"model": ErrorResponse} for code in (401, 422, 503)},
)
def search_chunks(
    q: Annotated[str, Query(min_length=1, max_length=2000, description="The query")],
    model: ModelDep,
    index: IndexDep,
    lexicon: LexiconDep,
    catalog: CatalogDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many chunks")] = 5,
    mode: Annotated[
        SearchMode,
        Query(
            description="hybrid: dense and lexical fused (default); dense: embeddings only; "
            "lexical: BM25 over terms only (no model needed)"
        ),
    ] = SearchMode.HYBRID,
) -> SearchResponse:
    """The top k chunks for a query, best first, each with its document, page and offsets."""
    if not q.strip():
        raise ApiError(422, "invalid_query", "the query is blank")
    try:
        results = search(
            q, k=k, mode=mode, embedder=model, index=index, lexicon=lexicon, catalog=catalog
        )
    except IndexUnavailable as exc:
        raise ApiError(503, "index_unavailable", str(exc)) from exc
    return SearchResponse(
        query=q, k=k, mode=mode, results=[SearchHit(**result.__dict__) for result in results]
    )
