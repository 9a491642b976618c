"""A typed client for the rag-ingest API: `Client`, `AsyncClient`, their results and errors.

from rag_client import Client

with Client("http://127.0.0.1:8000", api_key="...") as rag:
    [doc] = rag.upload("paper.pdf")
    rag.wait_until_indexed(doc.id)
    for hit in rag.search("what the paper found", k=3).results:
        print(hit.filename, hit.page, hit.score)
"""

from rag_client.calls import FileLike
from rag_client.client import AsyncClient, Client
from rag_client.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    IngestFailed,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RagError,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    WaitTimeout,
)
from rag_client.follow import FolderUpload, UploadProgress
from rag_client.models import (
    Chunk,
    ChunkPage,
    Collection,
    Document,
    DocumentPage,
    DocumentStatus,
    EmbeddingModel,
    Health,
    Key,
    KeyCreated,
    KeyIdentity,
    Rerun,
    RetryResponse,
    Role,
    Run,
    SearchHit,
    SearchMode,
    SearchResponse,
    UploadedDocument,
)
from rag_client.retry import NO_RETRY, Retry

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "BadRequest",
    "Chunk",
    "ChunkPage",
    "Client",
    "Collection",
    "Conflict",
    "ConnectionFailed",
    "Document",
    "DocumentPage",
    "DocumentStatus",
    "EmbeddingModel",
    "FileLike",
    "FolderUpload",
    "Forbidden",
    "Health",
    "IngestFailed",
    "InvalidRequest",
    "Key",
    "KeyCreated",
    "KeyIdentity",
    "NotFound",
    "PayloadTooLarge",
    "RagError",
    "RateLimited",
    "Rerun",
    "Retry",
    "RetryResponse",
    "Role",
    "Run",
    "SearchHit",
    "SearchMode",
    "SearchResponse",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UploadProgress",
    "UploadedDocument",
    "WaitTimeout",
]
