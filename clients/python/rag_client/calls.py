"""Every endpoint the client wraps, once, as a request to send and a parser for the answer.

Nothing here does I/O: `Client` and `AsyncClient` send the same `Call`s, one blocking and one
awaiting, so the two cannot drift apart.
"""

import json
import mimetypes
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import httpx
from pydantic import TypeAdapter

from rag_client import models
from rag_client.errors import ConnectionFailed, error_from
from rag_client.retry import Retry

T = TypeVar("T")
Params = list[tuple[str, str | int | float | bool | None]]

# What an upload takes: a path, (filename, bytes), or (filename, an open binary file).
FileLike = str | os.PathLike[str] | tuple[str, bytes] | tuple[str, IO[bytes]]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    json: Any = None
    data: dict[str, str] | None = None
    files: list[FileLike] = field(default_factory=list)
    # Error statuses whose body is this call's answer all the same (an unhealthy /health).
    answers: frozenset[int] = frozenset()

    def result(self, response: httpx.Response) -> T:
        """The parsed answer, or the typed exception for an error answer."""
        if not response.is_success and response.status_code not in self.answers:
            raise error_from(response)
        return self.parse(response)

    def finish(self, outcome: httpx.Response | Exception) -> T:
        """The answer of the last attempt, or its error as the client's exception."""
        if isinstance(outcome, Exception):
            raise ConnectionFailed(
                f"{self.method} {self.path}: {outcome!r}", code="connection_failed"
            ) from outcome
        return self.result(outcome)

    @contextmanager
    def request(self, http: httpx.Client | httpx.AsyncClient) -> Iterator[httpx.Request]:
        """The request for one attempt, its files open until the block ends."""
        with self.multipart() as files:
            yield http.build_request(
                self.method,
                self.path,
                params=self.params,
                json=self.json,
                data=self.data,
                files=files,
            )

    def wait_before_retry(
        self, retry: Retry, attempt: int, outcome: httpx.Response | Exception
    ) -> float | None:
        """Seconds to wait before sending again after `attempt`, or None: this is the end."""
        if isinstance(outcome, httpx.Response) and outcome.status_code in self.answers:
            return None
        return retry.after(attempt, self.method, outcome)

    @contextmanager
    def multipart(self) -> Iterator[list[tuple[str, tuple[str, Any, str]]] | None]:
        """The files as httpx takes them, opened for this attempt only, so a retry sends
        them again from the start."""
        if not self.files:
            yield None
            return
        with ExitStack() as opened:
            parts = []
            for item in self.files:
                if isinstance(item, tuple):
                    name, content = item
                    if not isinstance(content, bytes):
                        content.seek(0)
                else:
                    name = Path(item).name
                    content = opened.enter_context(open(item, "rb"))
                kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                parts.append(("file", (name, content, kind)))
            yield parts


def _model(kind: Any) -> Callable[[httpx.Response], Any]:
    adapter = TypeAdapter(kind)
    return lambda response: adapter.validate_json(response.content)


def _nothing(_: httpx.Response) -> None:
    return None


def _uploaded(response: httpx.Response) -> list[models.UploadedDocument]:
    return models.UploadResponse.model_validate_json(response.content).documents


def _first_uploaded(response: httpx.Response) -> models.UploadedDocument:
    return _uploaded(response)[0]


def _form(
    metadata: dict[str, Any] | None, chunk_size: int | None, chunk_overlap: int | None
) -> dict[str, str]:
    form = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    data = {name: str(value) for name, value in form.items() if value is not None}
    if metadata is not None:
        data["metadata"] = json.dumps(metadata)
    return data


def _repeat(name: str, values: list[str] | None) -> Params:
    return [(name, value) for value in values or []]


def upload(
    *files: FileLike,
    collection: str | None = None,
    metadata: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
) -> Call[list[models.UploadedDocument]]:
    """Upload files (paths, `(filename, bytes)` or `(filename, file)`) into a collection
    (`default` when none is named); returns one record per file, at once: ingestion goes on
    in the background (`wait_until_indexed`)."""
    if not files:
        raise ValueError("upload needs at least one file")
    path = f"/collections/{collection}/documents" if collection else "/documents"
    data = _form(metadata, chunk_size, chunk_overlap)
    return Call("POST", path, _uploaded, data=data, files=list(files))


def upload_url(
    url: str,
    *,
    collection: str | None = None,
    metadata: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
) -> Call[models.UploadedDocument]:
    """Have the service fetch a page or file by URL and ingest it as an upload of its bytes
    (`source_url` in its metadata). The service refuses private addresses unless its
    RAG_FETCH_ALLOW_HOSTS names the host (BadRequest `fetch_refused`); the remote's failure is
    ApiError `fetch_failed` (502), a slow remote `fetch_timeout` (504)."""
    path = f"/collections/{collection}/documents/url" if collection else "/documents/url"
    body = {
        "url": url,
        "metadata": metadata,
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
    }
    return Call("POST", path, _first_uploaded, json=body)


def replace(
    doc_id: str,
    file: FileLike,
    *,
    metadata: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
) -> Call[models.UploadedDocument]:
    """Upload a new version of a document; the old one stays searchable until the new one
    is indexed."""
    data = _form(metadata, chunk_size, chunk_overlap)
    return Call("PUT", f"/documents/{doc_id}", _first_uploaded, data=data, files=[file])


def document(doc_id: str) -> Call[models.Document]:
    """A document's status, per-stage states, error, metadata and runs."""
    return Call("GET", f"/documents/{doc_id}", _model(models.Document))


def documents(
    *,
    status: models.DocumentStatus | str | None = None,
    collections: list[str] | None = None,
    filter: dict[str, Any] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Call[models.DocumentPage]:
    """One page of documents, in the order they arrived, narrowed by status, collections and
    a metadata filter (the language search takes)."""
    params = [*_repeat("collection", collections), ("limit", limit), ("offset", offset)]
    if status is not None:
        params.append(("status", str(status)))
    if filter is not None:
        params.append(("filter", json.dumps(filter)))
    return Call("GET", "/documents", _model(models.DocumentPage), params=params)


def update_metadata(doc_id: str, metadata: dict[str, Any]) -> Call[models.Document]:
    """Merge `metadata` into the document's (a key set to None goes); no re-embedding."""
    return Call(
        "PATCH", f"/documents/{doc_id}", _model(models.Document), json={"metadata": metadata}
    )


def delete_document(doc_id: str) -> Call[None]:
    """Remove the document's vectors, artifacts and bytes; it then reads `deleted`."""
    return Call("DELETE", f"/documents/{doc_id}", _nothing)


def chunks(doc_id: str, *, limit: int = 50, offset: int = 0) -> Call[models.ChunkPage]:
    """A page of the document's chunks as embedded: pages, character offsets, tokens, text."""
    params: Params = [("limit", limit), ("offset", offset)]
    return Call("GET", f"/documents/{doc_id}/chunks", _model(models.ChunkPage), params=params)


def search(
    query: str,
    *,
    k: int = 5,
    mode: models.SearchMode | str = models.SearchMode.hybrid,
    collections: list[str] | None = None,
    filter: dict[str, Any] | None = None,
) -> Call[models.SearchResponse]:
    """The top `k` chunks for `query`, each citing its document, page and offsets; filters
    apply before top-k."""
    body = {
        "q": query,
        "k": k,
        "mode": str(mode),
        "collections": collections,
        "filter": filter,
    }
    return Call("POST", "/search", _model(models.SearchResponse), json=body)


def reprocess(
    doc_id: str, *, chunk_size: int | None = None, chunk_overlap: int | None = None
) -> Call[models.Rerun]:
    """Run a document again without an upload: from its chunks with new chunk options, else
    from its text. Admin keys only."""
    body = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    return Call("POST", f"/documents/{doc_id}/reprocess", _model(models.Rerun), json=body)


def retry(doc_id: str) -> Call[models.Rerun]:
    """Run one failed document again from the stage where it stopped. Admin keys only."""
    return Call("POST", f"/documents/{doc_id}/retry", _model(models.Rerun))


def retry_failed(
    *,
    error_code: str | None = None,
    collection: str | None = None,
    include_permanent: bool = False,
    limit: int = 1000,
) -> Call[models.RetryResponse]:
    """Run failed documents again in batched runs; permanent failures (password_required,
    no_text_layer, ...) only with `include_permanent`. Admin keys only."""
    body = {
        "error_code": error_code,
        "collection": collection,
        "include_permanent": include_permanent,
        "limit": limit,
    }
    return Call("POST", "/documents/retry", _model(models.RetryResponse), json=body)


def create_collection(
    name: str,
    *,
    description: str = "",
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    embedding_model: str | None = None,
) -> Call[models.Collection]:
    """A new collection (a slug), with its own chunk defaults and embedding model (one of
    `embedding_models()`; the service's default when None)."""
    body = {
        "name": name,
        "description": description,
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "embedding_model": embedding_model,
    }
    return Call("POST", "/collections", _model(models.Collection), json=body)


def embedding_models() -> Call[list[models.EmbeddingModel]]:
    """The models a collection can be embedded with, the default marked."""
    return Call("GET", "/embedding-models", _model(list[models.EmbeddingModel]))


def collections() -> Call[list[models.Collection]]:
    """The collections the key may see, with document counts per status."""
    return Call("GET", "/collections", _model(list[models.Collection]))


def collection(name: str) -> Call[models.Collection]:
    return Call("GET", f"/collections/{name}", _model(models.Collection))


def update_collection(
    name: str,
    *,
    description: str | None = UNSET,
    chunk_size: int | None = UNSET,
    chunk_overlap: int | None = UNSET,
    embedding_model: str | None = UNSET,
) -> Call[models.Collection]:
    """Change the fields given; a chunk setting set to None falls back to the default. Another
    `embedding_model` starts a model switch: the collection's `model_switch` follows it."""
    given = {
        "description": description,
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "embedding_model": embedding_model,
    }
    body = {field: value for field, value in given.items() if value is not UNSET}
    return Call("PATCH", f"/collections/{name}", _model(models.Collection), json=body)


def retry_model_switch(name: str) -> Call[models.Collection]:
    """Re-embed what the collection's model switch still lacks (documents that failed)."""
    path = f"/collections/{name}/model-switch/retry"
    return Call("POST", path, _model(models.Collection))


def cancel_model_switch(name: str) -> Call[models.Collection]:
    """Abandon the collection's model switch and remove its partial generation."""
    return Call("DELETE", f"/collections/{name}/model-switch", _model(models.Collection))


def delete_collection(name: str) -> Call[None]:
    return Call("DELETE", f"/collections/{name}", _nothing)


def create_key(
    name: str, role: models.Role | str, collections: list[str] | str = "*"
) -> Call[models.KeyCreated]:
    """A new API key; its `secret` is in this answer only. Admin keys only."""
    body = {"name": name, "role": str(role), "collections": collections}
    return Call("POST", "/keys", _model(models.KeyCreated), json=body)


def api_keys() -> Call[list[models.Key]]:
    """The stored keys, without secrets. Admin keys only."""
    return Call("GET", "/keys", _model(list[models.Key]))


def me() -> Call[models.KeyIdentity]:
    """The role and collections of the key this client carries."""
    return Call("GET", "/keys/me", _model(models.KeyIdentity))


def revoke_key(key_id: str) -> Call[None]:
    """Revoke a key (never the last admin key). Admin keys only."""
    return Call("DELETE", f"/keys/{key_id}", _nothing)


def run(run_id: str) -> Call[models.Run]:
    """A Dagster run's status, error and result. Admin keys only."""
    return Call("GET", f"/runs/{run_id}", _model(models.Run))


def health() -> Call[models.Health]:
    """Whether the instance and the index answer (`status` "ok" or "degraded"); needs no
    key."""
    return Call("GET", "/health", _model(models.Health), answers=frozenset({503}))
