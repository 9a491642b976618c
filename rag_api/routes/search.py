"""Dense search over the index, with citations joined from the catalog."""

from typing import Annotated

from fastapi import APIRouter, Query

from rag_api.deps import CatalogDep, IndexDep, ModelDep
from rag_api.schemas import ErrorResponse, SearchHit, SearchResponse
from rag_pipeline.core.search import search

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
    catalog: CatalogDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many chunks")] = 5,
) -> SearchResponse:
    """The top k chunks for a query, best first, each with its document, page and offsets."""
    results = search(q, k=k, embedder=model, index=index, catalog=catalog)
    return SearchResponse(
        query=q, k=k, results=[SearchHit(**result.__dict__) for result in results]
    )
