"""`Client` and `AsyncClient`: every endpoint of `rag_client.calls`, sent with retries.

Each endpoint is written once, in `calls`; the two classes bind it to their own transport
(`blocking` / `awaiting`), so signatures, docs and parsing are the same in both.
"""

import asyncio
import functools
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

import httpx

from rag_client import calls
from rag_client.calls import Call
from rag_client.errors import RagError, error_from
from rag_client.events import EventParser
from rag_client.follow import FolderUpload, Follow, UploadProgress, folder_files, indexed
from rag_client.models import Document, UploadedDocument
from rag_client.retry import Retry

P = ParamSpec("P")
T = TypeVar("T")

ProgressCallback = Callable[[UploadProgress], object]


def blocking(build: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], T]:
    @functools.wraps(build)
    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._send(build(*args, **kwargs))  # type: ignore[no-any-return]

    return method


def awaiting(build: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._send(build(*args, **kwargs))  # type: ignore[no-any-return]

    return method


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": "rag-ingest-client/0.1"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class _Base(Generic[H]):
    """`base_url` is the API's (e.g. http://127.0.0.1:8000); `api_key` a key made in the
    console or with `create_key`. `http` takes your own httpx client (a proxy, a test
    transport); the base URL and key are set on it."""

    _transport: Callable[..., H]

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: Retry | None = None,
        http: H | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retry = retry or Retry()
        self.timeout = timeout
        self._http: H = http or self._transport(timeout=timeout)
        self._http.base_url = httpx.URL(self.base_url)
        self._http.headers.update(_headers(api_key))


class Client(_Base[httpx.Client]):
    """A blocking client for every endpoint; see the package's README."""

    _transport = httpx.Client

    def _send(self, call: Call[T]) -> T:
        for attempt in itertools.count(1):
            outcome: httpx.Response | Exception
            with call.request(self._http) as request:
                try:
                    outcome = self._http.send(request)
                except httpx.TransportError as exc:
                    outcome = exc
            wait = call.wait_before_retry(self.retry, attempt, outcome)
            if wait is None:
                return call.finish(outcome)
            time.sleep(wait)
        raise AssertionError("unreachable")

    upload = blocking(calls.upload)
    upload_url = blocking(calls.upload_url)
    replace = blocking(calls.replace)
    document = blocking(calls.document)
    documents = blocking(calls.documents)
    update_metadata = blocking(calls.update_metadata)
    delete_document = blocking(calls.delete_document)
    chunks = blocking(calls.chunks)
    search = blocking(calls.search)
    reprocess = blocking(calls.reprocess)
    retry_document = blocking(calls.retry)
    retry_failed = blocking(calls.retry_failed)
    create_collection = blocking(calls.create_collection)
    collections = blocking(calls.collections)
    embedding_models = blocking(calls.embedding_models)
    collection = blocking(calls.collection)
    update_collection = blocking(calls.update_collection)
    retry_model_switch = blocking(calls.retry_model_switch)
    cancel_model_switch = blocking(calls.cancel_model_switch)
    delete_collection = blocking(calls.delete_collection)
    create_key = blocking(calls.create_key)
    api_keys = blocking(calls.api_keys)
    me = blocking(calls.me)
    revoke_key = blocking(calls.revoke_key)
    run = blocking(calls.run)
    health = blocking(calls.health)

    def upload_folder(
        self,
        folder: str | Path,
        pattern: str = "**/*",
        *,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FolderUpload:
        """Upload every complete file under `folder`, one request each, calling `on_progress`
        after each; a file the API refuses (empty, unsupported, too large) is recorded in
        `refused` and the rest go on."""
        paths = folder_files(folder, pattern)
        result = FolderUpload()
        for path in paths:
            outcome: UploadedDocument | RagError
            try:
                [outcome] = self.upload(path, collection=collection, metadata=metadata)
            except RagError as exc:
                outcome = exc
            result.record(path, len(paths), outcome, on_progress)
        return result

    def events(self, doc_id: str, *, timeout: float | None = None) -> Iterator[Document]:
        """The document each time its status or a stage changes, until it is indexed,
        failed, rejected or deleted; `WaitTimeout` after `timeout` seconds, if given."""
        follow = Follow(doc_id, timeout, self.retry, self.timeout)
        while True:
            try:
                with self._http.stream("GET", follow.path, timeout=follow.http_timeout()) as r:
                    if not r.is_success:
                        r.read()
                        raise error_from(r)
                    parser = EventParser()
                    for line in r.iter_lines():
                        doc = parser.feed(line)
                        if doc is not None:
                            follow.seen(doc)
                            yield doc
                        follow.check_deadline()
                if follow.done():
                    return
            except httpx.TransportError as exc:
                time.sleep(follow.after_error(exc))

    def wait_until_indexed(self, doc_id: str, *, timeout: float = 300.0) -> Document:
        """The document once indexed; `IngestFailed` (with its error code) if it fails, is
        rejected or deleted instead; `WaitTimeout` after `timeout` seconds."""
        last = None
        for last in self.events(doc_id, timeout=timeout):  # noqa: B007
            pass
        return indexed(last, doc_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Base[httpx.AsyncClient]):
    """The same as `Client`, awaited: every method is a coroutine, `events` an async
    iterator."""

    _transport = httpx.AsyncClient

    async def _send(self, call: Call[T]) -> T:
        for attempt in itertools.count(1):
            outcome: httpx.Response | Exception
            with call.request(self._http) as request:
                try:
                    outcome = await self._http.send(request)
                except httpx.TransportError as exc:
                    outcome = exc
            wait = call.wait_before_retry(self.retry, attempt, outcome)
            if wait is None:
                return call.finish(outcome)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    upload = awaiting(calls.upload)
    upload_url = awaiting(calls.upload_url)
    replace = awaiting(calls.replace)
    document = awaiting(calls.document)
    documents = awaiting(calls.documents)
    update_metadata = awaiting(calls.update_metadata)
    delete_document = awaiting(calls.delete_document)
    chunks = awaiting(calls.chunks)
    search = awaiting(calls.search)
    reprocess = awaiting(calls.reprocess)
    retry_document = awaiting(calls.retry)
    retry_failed = awaiting(calls.retry_failed)
    create_collection = awaiting(calls.create_collection)
    collections = awaiting(calls.collections)
    embedding_models = awaiting(calls.embedding_models)
    collection = awaiting(calls.collection)
    update_collection = awaiting(calls.update_collection)
    retry_model_switch = awaiting(calls.retry_model_switch)
    cancel_model_switch = awaiting(calls.cancel_model_switch)
    delete_collection = awaiting(calls.delete_collection)
    create_key = awaiting(calls.create_key)
    api_keys = awaiting(calls.api_keys)
    me = awaiting(calls.me)
    revoke_key = awaiting(calls.revoke_key)
    run = awaiting(calls.run)
    health = awaiting(calls.health)

    async def upload_folder(
        self,
        folder: str | Path,
        pattern: str = "**/*",
        *,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FolderUpload:
        """As `Client.upload_folder`."""
        paths = folder_files(folder, pattern)
        result = FolderUpload()
        for path in paths:
            outcome: UploadedDocument | RagError
            try:
                [outcome] = await self.upload(path, collection=collection, metadata=metadata)
            except RagError as exc:
                outcome = exc
            result.record(path, len(paths), outcome, on_progress)
        return result

    async def events(self, doc_id: str, *, timeout: float | None = None) -> AsyncIterator[Document]:
        """As `Client.events`."""
        follow = Follow(doc_id, timeout, self.retry, self.timeout)
        while True:
            try:
                async with self._http.stream(
                    "GET", follow.path, timeout=follow.http_timeout()
                ) as r:
                    if not r.is_success:
                        await r.aread()
                        raise error_from(r)
                    parser = EventParser()
                    async for line in r.aiter_lines():
                        doc = parser.feed(line)
                        if doc is not None:
                            follow.seen(doc)
                            yield doc
                        follow.check_deadline()
                if follow.done():
                    return
            except httpx.TransportError as exc:
                await asyncio.sleep(follow.after_error(exc))

    async def wait_until_indexed(self, doc_id: str, *, timeout: float = 300.0) -> Document:
        """As `Client.wait_until_indexed`."""
        last = None
        async for last in self.events(doc_id, timeout=timeout):  # noqa: B007
            pass
        return indexed(last, doc_id)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
