"""Fetching one document by URL, safely: the rules a URL from a writer is held to.

- Only http and https, without user name or password, at most `MAX_URL_CHARS` long.
- The host is resolved once per hop and every address it resolves to is checked
  (`addresses.refusal`); a host on the allow-list skips the check.
- The connection goes to an address that was checked, never to what the name resolves to a
  moment later (DNS rebinding): a network backend pins each host to its checked addresses,
  while the request keeps the name for its Host header, TLS SNI and certificate check.
- Redirects are followed here, at most `MAX_REDIRECTS`, each hop checked as the first.
- The body is counted as it streams in and cut past the cap; one deadline bounds the whole
  fetch: resolving, connecting and every read and write of every hop.
"""

import email.message
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpcore
import httpx

from rag_pipeline.core.sources.addresses import AllowList, refusal

MAX_URL_CHARS = 2048
MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
# Sent with every request, and the name robots.txt rules are matched against.
USER_AGENT = "rag-ingest"

Resolver = Callable[[str, int], list[str]]
# Resolving has no timeout of its own: it runs here, and the fetch waits for it only as long
# as its deadline allows.
_RESOLVERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fetch-resolve")
_TIMEOUTS = (httpx.TimeoutException, httpcore.TimeoutException)
_FAILURES = (
    httpx.HTTPError,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


class FetchError(Exception):
    """A fetch that did not bring a document back; one line that names the host."""


class FetchRefused(FetchError):
    """The URL, or where it leads, is not one a fetch may reach."""


class FetchFailed(FetchError):
    """The remote did not give the document: no such name, no connection, an error status
    (then `status` is it)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FetchTimeout(FetchError):
    """The fetch took longer than its bound."""


class FetchTooLarge(FetchError):
    """The response is larger than the cap."""


@dataclass(frozen=True)
class FetchPolicy:
    allow: AllowList
    max_bytes: int
    timeout_s: float
    max_redirects: int = MAX_REDIRECTS


@dataclass(frozen=True)
class Fetched:
    url: str  # the final URL, after redirects
    data: bytes
    filename: str  # as the remote names it (Content-Disposition) or the URL's last segment
    status: int = 200  # 304 only for a conditional request: not modified, no data
    etag: str | None = None
    last_modified: str | None = None  # as the remote wrote it


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for the host, in its order, once each."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass
class _Deadline:
    seconds: float
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = time.monotonic() + self.seconds

    def left(self, timeout: float | None = None, error: type[Exception] = FetchTimeout) -> float:
        """What is left of the bound (no more than `timeout`), or `error` once it is spent."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise error(f"the fetch took longer than {self.seconds:g} s")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects a host to one of the addresses it was checked at, never to another."""

    def __init__(self, deadline: _Deadline) -> None:
        self.pins: dict[str, list[str]] = {}
        self._deadline = deadline
        self._system = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError(f"{host} was not checked")
        for address in self.pins.get(host, []):
            try:
                stream = self._system.connect_tcp(
                    address,
                    port,
                    self._deadline.left(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _BoundedStream(stream, self._deadline)
        raise failure

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _PinnedTransport(httpx.BaseTransport):
    """httpx over an httpcore pool that connects through the pinned backend."""

    def __init__(self, backend: _PinnedBackend) -> None:
        self._pool = httpcore.ConnectionPool(network_backend=backend, retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Any:
        yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


def _host(url: httpx.URL) -> str:
    """The host as it is resolved and connected to (IDNA-encoded, an IPv6 one unbracketed)."""
    return url.raw_host.decode("ascii")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def checked_url(text: str) -> httpx.URL:
    """The URL as it will be fetched, or FetchRefused saying what is wrong with it."""
    if len(text) > MAX_URL_CHARS:
        raise FetchRefused(f"the URL is longer than {MAX_URL_CHARS} characters")
    try:
        url = httpx.URL(text.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchRefused(f"not a URL: {exc}") from exc
    if url.scheme not in SCHEMES:
        shown = f"{url.scheme}:" if url.scheme else "a URL without a scheme"
        raise FetchRefused(f"only http and https URLs are fetched, not {shown}")
    if url.userinfo:
        raise FetchRefused("a URL with a user name or password is not fetched")
    if not url.raw_host:
        raise FetchRefused("the URL names no host")
    return url.copy_with(fragment=None)


def _resolve(host: str, port: int, resolver: Resolver, deadline: _Deadline) -> list[str]:
    future = _RESOLVERS.submit(resolver, host, port)
    try:
        found = future.result(timeout=deadline.left())
    except FutureTimeout:
        raise FetchTimeout(f"resolving {host} took longer than {deadline.seconds:g} s") from None
    except OSError as exc:
        raise FetchFailed(f"{host} could not be resolved: {exc}") from exc
    if not found:
        raise FetchFailed(f"{host} resolves to no address")
    return found


def _check(url: httpx.URL, policy: FetchPolicy, addresses: list[str]) -> None:
    """FetchRefused unless every address is one a fetch may reach, or the host is allowed."""
    host, port = _host(url), _port(url)
    if policy.allow.permits(host, port):
        return
    for address in addresses:
        reason = refusal(address)
        if reason:
            where = host if address == host else f"{host} resolves to {address}, which"
            raise FetchRefused(
                f"{where} is a {reason} address, fetched only if RAG_FETCH_ALLOW_HOSTS "
                f"names {host} or {host}:{port}"
            )


def _filename(url: httpx.URL, headers: httpx.Headers) -> str:
    disposition = headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        named = message.get_filename()
        if named:
            return named
    segment = unquote(url.path.rstrip("/").rsplit("/", 1)[-1])
    return segment or url.host


def _body(response: httpx.Response, url: httpx.URL, max_bytes: int) -> bytes:
    too_large = FetchTooLarge(
        f"the response from {url.host} is larger than the upload limit of "
        f"{max_bytes / (1024 * 1024):g} MB (RAG_MAX_UPLOAD_MB)"
    )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(
    url: str,
    policy: FetchPolicy,
    resolver: Resolver = system_resolver,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """The document at `url` under the policy's rules, following redirects; a FetchError
    subclass says why not. `headers` are sent too (If-None-Match, If-Modified-Since: a 304
    answer comes back as a Fetched with status 304 and no data)."""
    deadline = _Deadline(policy.timeout_s)
    backend = _PinnedBackend(deadline)
    current = checked_url(url)
    with httpx.Client(
        transport=_PinnedTransport(backend),
        follow_redirects=False,
        trust_env=False,
        timeout=policy.timeout_s,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    ) as client:
        request = client.build_request("GET", current, headers=dict(headers or {}))
        for _ in range(policy.max_redirects + 1):
            addresses = _resolve(_host(current), _port(current), resolver, deadline)
            _check(current, policy, addresses)
            backend.pins[_host(current)] = addresses
            try:
                response = client.send(request, stream=True)
                try:
                    if response.next_request is not None:
                        request = response.next_request
                        current = checked_url(str(request.url))
                        continue
                    if response.status_code == 304 and headers:
                        data = b""
                    elif response.status_code >= 300:
                        raise FetchFailed(
                            f"{current.host} answered {response.status_code} "
                            f"{response.reason_phrase} for {current}",
                            response.status_code,
                        )
                    else:
                        data = _body(response, current, policy.max_bytes)
                finally:
                    response.close()
            except _TIMEOUTS as exc:
                raise FetchTimeout(
                    f"fetching from {current.host} took longer than {policy.timeout_s:g} s"
                ) from exc
            except _FAILURES as exc:
                raise FetchFailed(f"fetching from {current.host} failed: {exc}") from exc
            return Fetched(
                url=str(current),
                data=data,
                filename=_filename(current, response.headers),
                status=response.status_code,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    raise FetchFailed(f"{url} redirects more than {policy.max_redirects} times")
