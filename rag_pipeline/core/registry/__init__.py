"""The document registry: one transactional home for each document's life and status.

A row per document id holds what registration knew (collection, file name, hash, type, size,
options, origin, where the bytes wait), how its life ended (deleted, superseded, rejected), and
the status projection: the document's status, error and chunk count, and one row per stage.
The ingestion step writes the projection where it logs each materialization or failure; the
sensor reconciles it with the Dagster instance for runs that died. Dagster keeps the history.

SQLite in WAL mode under the data dir on one machine; PostgreSQL (any SQLAlchemy URL) at
scale. The schema is versioned with alembic and upgraded when the registry is opened.
"""

from rag_pipeline.core.registry.database import default_url
from rag_pipeline.core.registry.model import (
    DEFAULT_COLLECTION,
    LIVE,
    STAGES,
    ApiKey,
    Collection,
    CollectionNotFound,
    Document,
    DocumentStatus,
    LastAdminKey,
    Role,
    Source,
    SourceObject,
    Stage,
    StageState,
)
from rag_pipeline.core.registry.registry import Registry

__all__ = [
    "DEFAULT_COLLECTION",
    "LIVE",
    "STAGES",
    "ApiKey",
    "Collection",
    "CollectionNotFound",
    "Document",
    "DocumentStatus",
    "LastAdminKey",
    "Registry",
    "Role",
    "Source",
    "SourceObject",
    "Stage",
    "StageState",
    "default_url",
]
