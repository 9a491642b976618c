"""Chunk options as a user gives them, checked the same way by the API and the command line."""

from rag_pipeline.core.documents.service import check_document_options
from rag_pipeline.core.registry import Collection, Document
from rag_pipeline.core.stages.embedders import max_tokens_for
from rag_pipeline.settings import Settings


def check_options(
    size: int | None,
    overlap: int | None,
    settings: Settings,
    home: Collection | None = None,
    base: Document | None = None,
) -> None:
    """Chunk options as given with an upload, a collection or a reprocess; unset ones are the
    document's own, then its collection's, then the service's. Raises InvalidOptions."""
    check_document_options(
        base,
        size,
        overlap,
        max_tokens=max_tokens_for(settings.embedding_model),
        default_size=(home.chunk_size if home and home.chunk_size else settings.chunk_size),
        default_overlap=(
            home.chunk_overlap
            if home and home.chunk_overlap is not None
            else settings.chunk_overlap
        ),
    )
