"""Chunk options as a user gives them, checked one way for the API and the command line."""

from dataclasses import dataclass

from rag_pipeline.core.documents.errors import InvalidOptions
from rag_pipeline.core.registry import Collection, Document


@dataclass(frozen=True)
class ChunkDefaults:
    """The service's own chunk options, and the longest chunk its embedding model takes."""

    max_tokens: int
    size: int
    overlap: int


def check_options(
    size: int | None,
    overlap: int | None,
    defaults: ChunkDefaults,
    home: Collection | None = None,
    base: Document | None = None,
) -> None:
    """Chunk options as given with an upload, a collection or a reprocess (None: keep the
    current one); what is not given is the document's own (`base`), then its collection's
    (`home`), then the service's. Raises InvalidOptions."""
    base_size = (
        (base.chunk_size if base is not None else None)
        or (home.chunk_size if home is not None else None)
        or defaults.size
    )
    base_overlap = next(
        (
            value
            for value in (
                base.chunk_overlap if base is not None else None,
                home.chunk_overlap if home is not None else None,
            )
            if value is not None
        ),
        defaults.overlap,
    )
    if size is not None and not 1 <= size <= defaults.max_tokens:
        raise InvalidOptions(f"chunk_size must be between 1 and {defaults.max_tokens}")
    effective_size = size or base_size
    effective_overlap = base_overlap if overlap is None else overlap
    if not 0 <= effective_overlap < effective_size:
        raise InvalidOptions(
            f"chunk_overlap must be at least 0 and below {effective_size}"
            + ("" if overlap is not None else f" (it is {effective_overlap})")
        )
