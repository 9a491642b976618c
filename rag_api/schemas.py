"""Response schemas: what clients see, not storage rows."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from rag_pipeline.core.documents.reports import DocumentStatus, StageState
from rag_pipeline.core.registry import Role
from rag_pipeline.core.retrieval.search import SearchMode
from rag_pipeline.orchestration.runs.run_requests import RunStatus


class ErrorInfo(BaseModel):
    code: str
    message: str
    detail: Any = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


class StageOut(BaseModel):
    state: StageState
    materialized_at: str | None = None
    failed_at: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentError(BaseModel):
    stage: str
    code: str
    message: str


class DocumentOut(BaseModel):
    """The same record as `rag-pipeline status --json`."""

    id: str
    collection: str
    filename: str | None
    metadata: dict[str, Any] = Field(
        description="strings, numbers, booleans and lists of strings, set at upload or by PATCH"
    )
    status: DocumentStatus
    stages: dict[str, StageOut]
    error: DocumentError | None
    chunks: int | None
    created_at: str | None
    indexed_at: str | None
    run_ids: list[str]
    deleted_at: str | None = None
    superseded_by: str | None = None


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    limit: int
    offset: int


class ChunkOut(BaseModel):
    """One chunk as it was embedded, with where it came from."""

    chunk_no: int = Field(description="its number in the document, from 0")
    page: int = Field(description="the page it starts on")
    page_end: int = Field(description="the page it ends on")
    char_start: int = Field(description="its first character's offset in the document's text")
    char_end: int = Field(description="the offset just past its last character")
    tokens: int = Field(description="the embedding model's tokens in it")
    text: str


class ChunkPage(BaseModel):
    document_id: str
    items: list[ChunkOut]
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


class Reprocess(BaseModel):
    """New chunk options for the document; none re-runs it from its text as it is."""

    model_config = ConfigDict(extra="forbid")

    chunk_size: int | None = Field(default=None, description="tokens per chunk")
    chunk_overlap: int | None = Field(default=None, description="tokens of overlap")


class Reprocessed(BaseModel):
    id: str
    run_id: str
    first_stage: str = Field(description="the stage the run starts at")
    status_url: str
    run_url: str


class RetryRequest(BaseModel):
    """Which failed documents to run again; every filter is optional."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["failed"] = "failed"
    error_code: str | None = Field(default=None, max_length=64, description="e.g. run_failed")
    collection: str | None = Field(
        default=None,
        max_length=64,
        description="only this collection's documents",
    )
    include_permanent: StrictBool = Field(
        default=False,
        description="also password_required, no_text_layer, unsupported_type and empty_file, "
        "which the same bytes will fail again",
    )
    limit: int = Field(default=1000, ge=1, le=10_000, description="at most this many documents")


class RetryRun(BaseModel):
    run_id: str
    documents: list[str]
    first_stage: str
    run_url: str


class RetryResponse(BaseModel):
    documents: list[str]
    runs: list[RetryRun] = Field(description="one run per batch, not per document")
    skipped_permanent: int = Field(description="matching failures left alone as permanent")


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


class SearchResponse(BaseModel):
    query: str
    k: int
    mode: SearchMode = Field(description="the mode served: lexical when hybrid had to fall back")
    degraded: str | None = Field(
        default=None, description="why results are lexical only, when the vector index is down"
    )
    results: list[SearchHit]


SEARCH_MODE_HELP = (
    "hybrid: dense and lexical fused (default); dense: embeddings only; "
    "lexical: BM25 over terms only (needs neither the model nor the vector index)"
)
FILTER_HELP = (
    'a filter over metadata and document_id, filename, media_type: {"field": value}, '
    '{"field": {"$in": [...]}}, {"$ne": v}, {"$gt"/"$gte"/"$lt"/"$lte": number or ISO date}, '
    '{"$and": [...]}, {"$or": [...]}'
)


class SearchIn(BaseModel):
    q: str = Field(min_length=1, max_length=2000, description="The query")
    k: int = Field(default=5, ge=1, le=100, description="How many chunks")
    mode: SearchMode = Field(default=SearchMode.HYBRID, description=SEARCH_MODE_HELP)
    collections: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Search these collections (default: all the key may read)",
    )
    filter: dict[str, Any] | None = Field(default=None, description=FILTER_HELP)


class MetadataPatch(BaseModel):
    metadata: dict[str, Any] = Field(
        description="merged into the document's metadata (JSON merge patch): a key set to null "
        "goes, any other value replaces the old one"
    )


class UrlIn(BaseModel):
    """A page or file to fetch and ingest, as an upload of its bytes would be."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="an http or https URL; redirects are followed and checked")
    metadata: dict[str, Any] | None = Field(
        default=None,
        description="as an upload's; `source_url` is set to the URL fetched, after redirects",
    )
    chunk_size: int | None = Field(default=None, description="tokens per chunk")
    chunk_overlap: int | None = Field(default=None, description="tokens of overlap")


class CollectionIn(BaseModel):
    name: str = Field(description="a slug: lowercase letters and digits, joined by hyphens")
    description: str = Field(default="", max_length=2000)
    chunk_size: int | None = Field(default=None, description="tokens per chunk of its uploads")
    chunk_overlap: int | None = Field(default=None, description="tokens of overlap")
    embedding_model: str | None = Field(
        default=None,
        description="the model its documents are embedded with (GET /embedding-models); "
        "RAG_EMBEDDING_MODEL when left out",
    )


class CollectionPatch(BaseModel):
    """Fields to change; a chunk setting set to null falls back to the service's default."""

    description: str | None = Field(default=None, max_length=2000)
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    embedding_model: str | None = Field(
        default=None,
        description="switch the collection to this model (GET /embedding-models): answers 202 "
        "and re-embeds it into a new index generation while search serves the old one; its "
        "current model is a no-op (200)",
    )


class SwitchFailureOut(BaseModel):
    document_id: str
    code: str = Field(description="why the new model could not take the document")
    message: str


class ModelSwitchOut(BaseModel):
    """A model switch under way: the generation being written and how far it has got."""

    embedding_model: str = Field(description="the model the collection is switching to")
    generation: int = Field(description="the index generation it writes")
    documents_done: int = Field(description="documents written to the new generation")
    documents_total: int = Field(description="documents it needs: live, not failed at ingestion")
    failed: list[SwitchFailureOut] = Field(
        description="documents the new model failed on; retry with "
        "POST /collections/{name}/model-switch/retry"
    )


class CollectionOut(BaseModel):
    name: str
    embedding_model: str = Field(description="the model its documents are embedded with")
    generation: int = Field(description="the index generation search serves")
    model_switch: ModelSwitchOut | None = Field(
        default=None, description="the model switch under way, if any"
    )
    description: str
    chunk_size: int | None
    chunk_overlap: int | None
    documents: int = Field(description="live documents: queued, processing, indexed or failed")
    by_status: dict[str, int] = Field(
        default_factory=dict, description="documents per status, deleted ones left out"
    )
    created_at: str
    updated_at: str


class EmbeddingModelOut(BaseModel):
    name: str = Field(description="what a collection's `embedding_model` names")
    dimension: int
    max_input_tokens: int = Field(
        description="the longest chunk it embeds whole, in the chunker's tokens: the bound of "
        "chunk_size for its collections"
    )
    multilingual: bool
    runs: Literal["in-process", "endpoint"] = Field(
        description="in the service's own processes, or on an OpenAI-compatible server"
    )
    default: bool = Field(description="whether new collections get it (RAG_EMBEDDING_MODEL)")


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    collections: list[str] | Literal["*"] = Field(
        description='the collections it may touch, or "*" for every one (an admin key: "*")'
    )


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    collections: list[str] | Literal["*"]
    created_at: str


class KeyIdentity(BaseModel):
    """What the key a request carries may do: the console shows only that."""

    id: str | None = Field(description="the stored key's id; null for RAG_API_KEY or an open API")
    role: Role
    collections: list[str] | Literal["*"]
    open: bool = Field(description="whether the API takes requests without any key")


class KeyCreated(KeyOut):
    secret: str = Field(description="the key itself: shown this once, stored only as a hash")


class InstigatorOut(BaseModel):
    name: str
    kind: str
    status: str
    job: str | None = None
    cron: str | None = None
    timezone: str | None = None
    interval_seconds: int | None = None
    last_tick_at: str | None = None
    next_tick_at: str | None = None


class ScheduleChange(BaseModel):
    """What PATCH /schedules/{name} changes; at least one field."""

    model_config = ConfigDict(extra="forbid")

    running: StrictBool | None = Field(default=None, description="start or stop the schedule")
    cron: str | None = Field(
        default=None, max_length=120, description="five fields: minute hour day month weekday"
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="a tz database name, e.g. UTC or Europe/Paris"
    )


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str]
    warm: bool = Field(
        description="whether start-up has loaded the model and the lexical index: until then "
        "the first searches pay for it"
    )


class RunOut(BaseModel):
    """A Dagster run, as GET /runs/{run_id} reports it."""

    id: str
    job: str
    status: RunStatus
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None = Field(description="why the run failed, when it did")
    metadata: dict[str, Any] = Field(
        description="the job's own result: a backup's archive path and size, cleanup's counts, "
        "the documents an ingest run could not process"
    )
    tags: dict[str, str]


class RunStarted(BaseModel):
    run_id: str
    job: str
    status_url: str
