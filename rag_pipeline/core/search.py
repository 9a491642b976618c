"""Dense search: embed the query, find the nearest vectors, join chunk text from the catalog."""

from dataclasses import dataclass

from rag_pipeline.core.catalog import Catalog
from rag_pipeline.core.embedding import Embedder
from rag_pipeline.core.index import VectorIndex


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


def search(
    query: str, *, k: int, embedder: Embedder, index: VectorIndex, catalog: Catalog
) -> list[SearchResult]:
    if not query.strip():
        raise ValueError("the query is empty")
    if k < 1:
        raise ValueError("k must be at least 1")
    hits = index.query(embedder.embed([query])[0], k)
    texts = catalog.chunk_texts([(h.document_id, h.chunk_no) for h in hits])
    return [
        SearchResult(
            document_id=h.document_id,
            filename=h.filename,
            chunk_no=h.chunk_no,
            page=h.page,
            char_start=h.char_start,
            char_end=h.char_end,
            score=round(h.score, 6),
            text=texts[(h.document_id, h.chunk_no)],
        )
        for h in hits
        # A vector whose document was deleted between query and join is not a result.
        if (h.document_id, h.chunk_no) in texts
    ]
