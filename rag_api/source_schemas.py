"""The schemas of a collection's sources (routes/sources.py): what is asked to make one, what
is shown of one (never a secret), and what a sync did."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class S3SourceIn(BaseModel):
    """A bucket prefix; credentials come from the environment variables
    `<credentials_env>_ACCESS_KEY_ID` and `<credentials_env>_SECRET_ACCESS_KEY` (and
    `_SESSION_TOKEN`), or boto3's own chain without it. No secret is taken or stored."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=255)
    prefix: str = Field(default="", max_length=1024)
    endpoint_url: str | None = Field(
        default=None, max_length=2000, description="an S3-compatible store's URL (MinIO, R2...)"
    )
    region: str | None = Field(default=None, max_length=64)
    credentials_env: str | None = Field(
        default=None, description="the prefix of the environment variables holding credentials"
    )


class WebSourceIn(BaseModel):
    """Pages of a web site: those listed, and those of a sitemap (or a sitemap index, one level
    deep). Fetched under the rules of a fetch by URL (RAG_FETCH_ALLOW_HOSTS...), robots.txt
    obeyed for the user agent `rag-ingest`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["web"]
    urls: list[str] = Field(default_factory=list, max_length=1000)
    sitemap: str | None = Field(default=None, max_length=2048)
    max_pages: int = Field(default=100, ge=1, le=10_000, description="pages one sync looks at")
    same_host_only: bool = Field(
        default=True, description="only pages on the hosts of `urls` and `sitemap`"
    )


SourceIn = Annotated[S3SourceIn | WebSourceIn, Field(discriminator="type")]


class SyncCounts(BaseModel):
    seen: int = Field(description="objects listed (a web source: pages it looked at)")
    added: int = Field(description="new documents")
    changed: int = Field(description="new versions of documents")
    retired: int = Field(description="documents whose object is gone (a page: gone twice)")
    failed: int = Field(
        description="objects that could not become documents (a page: also refused, "
        "disallowed by robots.txt, or gone once)"
    )
    deferred: int = Field(description="changes left for the next sync (over the per-sync limit)")


class _SourceOut(BaseModel):
    id: str
    collection: str
    created_at: str
    last_sync_at: str | None
    last_counts: SyncCounts | None = Field(description="what the last sync did")
    last_error: str | None = Field(description="why the last sync failed, if it did")


class S3SourceOut(_SourceOut):
    type: Literal["s3"]
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    credentials_env: str | None = Field(description="the variables' prefix, never their values")


class WebSourceOut(_SourceOut):
    type: Literal["web"]
    urls: list[str]
    sitemap: str | None
    max_pages: int
    same_host_only: bool


SourceOut = Annotated[S3SourceOut | WebSourceOut, Field(discriminator="type")]


class SyncOut(SyncCounts):
    source: str
    documents: list[str] = Field(description="documents registered by this sync, to be ingested")
