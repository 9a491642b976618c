"""Typed results: the API's response bodies (rag_api/schemas.py), as the client sees them.

Fields the API adds later are ignored rather than refused, so an older client keeps working.
"""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class DocumentStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    indexed = "indexed"
    failed = "failed"
    rejected = "rejected"
    deleted = "deleted"


# Statuses a document does not leave without a new upload, retry or reprocess.
TERMINAL = frozenset(
    {DocumentStatus.indexed, DocumentStatus.failed, DocumentStatus.rejected, DocumentStatus.deleted}
)


class StageState(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    materialized = "materialized"
    failed = "failed"


class SearchMode(StrEnum):
    hybrid = "hybrid"
    dense = "dense"
    lexical = "lexical"


class Role(StrEnum):
    admin = "admin"
    writer = "writer"
    reader = "reader"


class RunStatus(StrEnum):
    queued = "queued"
    starting = "starting"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceling = "canceling"
    canceled = "canceled"


class Stage(BaseModel):
    state: StageState
    materialized_at: str | None = None
    failed_at: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentError(BaseModel):
    stage: str
    code: str
    message: str


class Document(BaseModel):
    id: str
    collection: str
    filename: str | None
    metadata: dict[str, Any]
    status: DocumentStatus
    stages: dict[str, Stage]
    error: DocumentError | None
    chunks: int | None
    created_at: str | None
    indexed_at: str | None
    run_ids: list[str]
    deleted_at: str | None = None
    superseded_by: str | None = None


class DocumentPage(BaseModel):
    items: list[Document]
    total: int
    limit: int
    offset: int


class Chunk(BaseModel):
    chunk_no: int
    page: int
    page_end: int
    char_start: int
    char_end: int
    tokens: int
    text: str


class ChunkPage(BaseModel):
    document_id: str
    items: list[Chunk]
    total: int
    limit: int
    offset: int


class UploadedDocument(BaseModel):
    id: str
    filename: str
    status: DocumentStatus
    status_url: str
    duplicate: bool = False


class UploadResponse(BaseModel):
    documents: list[UploadedDocument]


class Rerun(BaseModel):
    """A reprocess or retry of one document: the run it started and where it starts."""

    id: str
    run_id: str
    first_stage: str
    status_url: str
    run_url: str


class RetryRun(BaseModel):
    run_id: str
    documents: list[str]
    first_stage: str
    run_url: str


class RetryResponse(BaseModel):
    documents: list[str]
    runs: list[RetryRun]
    skipped_permanent: int


class SearchHit(BaseModel):
    document_id: str
    collection: str
    filename: str
    metadata: dict[str, Any]
    chunk_no: int
    page: int
    score: float
    text: str
    char_start: int
    char_end: int

    @property
    def chunk_id(self) -> str:
        """The chunk's id in the index: `<document id>:<chunk number>`."""
        return f"{self.document_id}:{self.chunk_no}"

    def citation(self) -> dict[str, Any]:
        """Where the hit comes from, as the retrievers put it in each result's metadata."""
        return {
            "document_id": self.document_id,
            "filename": self.filename,
            "collection": self.collection,
            "page": self.page,
            "chunk_no": self.chunk_no,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "score": self.score,
            "document_metadata": self.metadata,
        }


class SearchResponse(BaseModel):
    query: str
    k: int
    mode: SearchMode
    degraded: str | None = None
    results: list[SearchHit]


class SwitchFailure(BaseModel):
    document_id: str
    code: str
    message: str


class ModelSwitch(BaseModel):
    """A model switch under way: the generation being written and how far it has got."""

    embedding_model: str
    generation: int
    documents_done: int
    documents_total: int
    failed: list[SwitchFailure]


class Collection(BaseModel):
    name: str
    embedding_model: str
    generation: int
    model_switch: ModelSwitch | None = None
    description: str
    chunk_size: int | None
    chunk_overlap: int | None
    documents: int
    by_status: dict[str, int] = Field(default_factory=dict)
    created_at: str
    updated_at: str


class EmbeddingModel(BaseModel):
    """A model collections can be embedded with (GET /embedding-models)."""

    name: str
    dimension: int
    max_input_tokens: int
    multilingual: bool
    runs: Literal["in-process", "endpoint"]
    default: bool


class Key(BaseModel):
    id: str
    name: str
    role: Role
    collections: list[str] | Literal["*"]
    created_at: str


class KeyCreated(Key):
    secret: str


class KeyIdentity(BaseModel):
    id: str | None
    role: Role
    collections: list[str] | Literal["*"]
    open: bool


class Health(BaseModel):
    status: str
    checks: dict[str, str]
    warm: bool


class Run(BaseModel):
    id: str
    job: str
    status: RunStatus
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None
    metadata: dict[str, Any]
    tags: dict[str, str]
