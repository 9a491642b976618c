"""The registry's tables and the plain records read from them."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

STAGES = ("raw_document", "document_text", "document_chunks", "chunk_embeddings", "vector_index")
DEFAULT_COLLECTION = "default"


class CollectionNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no collection named {name!r}")
        self.name = name


class LastAdminKey(RuntimeError):
    """Revoking this key would leave no admin key: no one could manage keys any more."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"key {key_id!r} is the last active admin key")
        self.key_id = key_id


class DocumentStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    indexed = "indexed"
    failed = "failed"
    rejected = "rejected"
    deleted = "deleted"


# A document that is (or is becoming) content: what dedupe and supersede look at.
LIVE = (
    DocumentStatus.queued,
    DocumentStatus.processing,
    DocumentStatus.indexed,
    DocumentStatus.failed,
)


class StageState(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    materialized = "materialized"
    failed = "failed"


metadata = sa.MetaData()

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("collection", sa.String(64), nullable=False, server_default=DEFAULT_COLLECTION),
    sa.Column("filename", sa.Text, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("media_type", sa.String(128), nullable=True),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("chunk_size", sa.Integer, nullable=True),
    sa.Column("chunk_overlap", sa.Integer, nullable=True),
    # upload, landing or cli; and where the bytes wait until raw_document keeps them.
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("source_path", sa.Text, nullable=True),
    sa.Column("landing_path", sa.Text, nullable=True),
    sa.Column("supersedes", sa.String(200), nullable=True),
    sa.Column("registered_at", sa.Float, nullable=False),
    # Set once the partition exists and a run was asked for; null while waiting for pickup.
    sa.Column("submitted_at", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("error_stage", sa.String(32), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("chunks", sa.Integer, nullable=True),
    sa.Column("indexed_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
    sa.Column("delete_reason", sa.Text, nullable=True),
    sa.Column("superseded_by", sa.String(200), nullable=True),
    # The partition of a deleted document, still to be removed once no run names it.
    sa.Column("release_partition", sa.Boolean, nullable=False, server_default=sa.false()),
    # The user's metadata: a JSON object of strings, numbers, booleans and lists of strings.
    sa.Column("metadata", sa.JSON, nullable=True),
    # With status in it, the default listing (all but deleted) filters without leaving the index.
    sa.Index("ix_documents_order", "registered_at", "id", "status"),
    sa.Index("ix_documents_status_order", "status", "registered_at", "id"),
    sa.Index("ix_documents_sha256", "sha256"),
    sa.Index("ix_documents_landing_path", "landing_path"),
    sa.Index("ix_documents_run", "run_id"),
    sa.Index("ix_documents_collection_order", "collection", "registered_at", "id"),
    # Search follows what changed since it last looked (collection, metadata, liveness).
    sa.Index("ix_documents_updated", "updated_at"),
)

stages = sa.Table(
    "stages",
    metadata,
    sa.Column(
        "document_id",
        sa.String(200),
        sa.ForeignKey("documents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("at", sa.Float, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("metadata", sa.JSON, nullable=True),
)

# Small named values the services keep between calls, e.g. the reconciler's high-water mark.
state = sa.Table(
    "state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


collections = sa.Table(
    "collections",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("chunk_size", sa.Integer, nullable=True),
    sa.Column("chunk_overlap", sa.Integer, nullable=True),
    # Names the collection's vector index apart from an earlier collection of the same name.
    sa.Column("index_token", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The model its vectors are embedded with; null (collections from before models were a
    # choice) is the service's configured default.
    sa.Column("embedding_model", sa.String(200), nullable=True),
    # Which index generation serves search (its vectors were written by `embedding_model`), and
    # the one a model switch is writing while it does (null when no switch is under way).
    sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
    sa.Column("pending_model", sa.String(200), nullable=True),
    sa.Column("pending_generation", sa.Integer, nullable=True),
    # The highest generation ever begun: a cancelled one's number is never used again, so no
    # process can hold a handle to a removed Chroma collection under a name in use.
    sa.Column("last_generation", sa.Integer, nullable=False, server_default="1"),
)

# What a model switch has written to its pending generation: a row per document, done or
# failed (with why); the rows go when the switch completes or is cancelled.
switch_documents = sa.Table(
    "switch_documents",
    metadata,
    sa.Column("collection", sa.String(64), primary_key=True),
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("document_id", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    # What chunk_embeddings wrote for the new model: the document's stage shows it once the
    # collection swaps.
    sa.Column("metadata", sa.JSON, nullable=True),
    sa.Column("at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # A list of collection names, or null for every collection.
    sa.Column("collections", sa.JSON, nullable=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)


# A place documents are synced from (a bucket prefix), and what each sync found. `config` holds
# where to look and the *name* of the environment variables with credentials, never a secret.
sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "collection",
        sa.String(64),
        sa.ForeignKey("collections.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # A sync holds the source until then, so the sensor and the API never sync it at once.
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("last_sync_at", sa.Float, nullable=True),
    # The last sync's counts (seen, added, changed, retired, failed), and its error.
    sa.Column("last_counts", sa.JSON, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)

# The sync cursor: each object of a source as it was last taken, and the document it became.
source_objects = sa.Table(
    "source_objects",
    metadata,
    sa.Column(
        "source_id",
        sa.String(32),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("last_modified", sa.Float, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    # None: the object could not become a document (its reason is `error`); tried again only
    # once it changes.
    sa.Column("document_id", sa.String(200), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)


def fresh_row(now: float, **values: Any) -> dict[str, Any]:
    """Every column of a document row as a new life starts it: queued, with no outcome, no
    run and no end; `values` fill in what registration knows."""
    row: dict[str, Any] = {column.name: None for column in documents.columns if column.name != "id"}
    row.update(
        collection=DEFAULT_COLLECTION,
        origin="landing",
        registered_at=now,
        updated_at=now,
        status=DocumentStatus.queued.value,
        release_partition=False,
    )
    row.update(values)
    return row


@dataclass
class Stage:
    state: StageState = StageState.pending
    at: float | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Document:
    """One registry row, with its stages."""

    id: str
    collection: str
    filename: str | None
    sha256: str | None
    media_type: str | None
    bytes: int | None
    chunk_size: int | None
    chunk_overlap: int | None
    origin: str
    source_path: str | None
    landing_path: str | None
    supersedes: str | None
    registered_at: float
    submitted_at: float | None
    status: DocumentStatus
    run_id: str | None
    error_stage: str | None
    error_code: str | None
    error_message: str | None
    chunks: int | None
    indexed_at: float | None
    updated_at: float
    deleted_at: float | None
    delete_reason: str | None
    superseded_by: str | None
    release_partition: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Stage] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @classmethod
    def from_row(cls, row: Any) -> "Document":
        values = dict(row._mapping)
        values["status"] = DocumentStatus(values["status"])
        values["metadata"] = values.get("metadata") or {}
        return cls(**values, stages={s: Stage() for s in STAGES})


@dataclass(frozen=True)
class Collection:
    """A knowledge base: its documents' chunk defaults, and where its vectors live."""

    name: str
    description: str
    chunk_size: int | None
    chunk_overlap: int | None
    index_token: str
    created_at: float
    updated_at: float
    embedding_model: str | None = None
    generation: int = 1
    pending_model: str | None = None
    pending_generation: int | None = None
    last_generation: int = 1

    def model(self, default: str) -> str:
        """The model its vectors are embedded with."""
        return self.embedding_model or default

    @property
    def index_suffix(self) -> str:
        """What names the vector index search serves after the configured one: `default`'s
        first generation is the configured collection itself (the vectors of every document
        from before collections)."""
        return self.suffix_of(self.generation)

    @property
    def pending_suffix(self) -> str | None:
        """The index a model switch is writing, if one is under way."""
        return None if self.pending_generation is None else self.suffix_of(self.pending_generation)

    def suffix_of(self, generation: int) -> str:
        """Generation 1 keeps the name from before generations; a later one adds `__g<n>`,
        which no collection's slug can hold."""
        own = "" if self.name == DEFAULT_COLLECTION else f"{self.name}-{self.index_token}"
        return own if generation == 1 else f"{own}__g{generation}"

    @classmethod
    def from_row(cls, row: Any) -> "Collection":
        return cls(**dict(row._mapping))


class Role(StrEnum):
    admin = "admin"
    writer = "writer"
    reader = "reader"


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret; `collections` None means every collection."""

    id: str
    name: str
    role: Role
    collections: tuple[str, ...] | None
    created_at: float
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> "ApiKey":
        return cls(
            id=row.id,
            name=row.name,
            role=Role(row.role),
            collections=None if row.collections is None else tuple(row.collections),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True)
class Source:
    """A source of a collection: its type, where to look, and how its last sync went."""

    id: str
    collection: str
    type: str
    config: dict[str, Any]
    created_at: float
    lease_until: float | None
    last_sync_at: float | None
    last_counts: dict[str, int] | None
    last_error: str | None

    @classmethod
    def from_row(cls, row: Any) -> "Source":
        return cls(**dict(row._mapping))


@dataclass(frozen=True)
class SourceObject:
    """An object of a source as the last sync took it."""

    key: str
    etag: str
    last_modified: float | None
    version: int
    document_id: str | None
    error: str | None
