"""When the client sends a request again: against a tiny HTTP server in this process that
answers from a script (503 twice then 200, a 422, a 429 with Retry-After), counting what
it receives."""

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from rag_client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    RagError,
    Retry,
    Unavailable,
)

FAST = Retry(attempts=4, backoff=0.01, max_backoff=0.05)
HITS = {"query": "q", "k": 1, "mode": "lexical", "degraded": None, "results": []}


def _error(status: int, code: str) -> tuple[int, dict[str, str], Any]:
    return status, {}, {"error": {"code": code, "message": f"said {code}", "detail": None}}


def _unbounded(multipart: bytes) -> bytes:
    """A multipart body without its boundary, which each attempt draws afresh."""
    boundary = multipart.split(b"\r\n", 1)[0]
    return multipart.replace(boundary, b"--")


@dataclass
class Scripted:
    """Answers requests in turn from `script` (the last one repeats), recording each."""

    script: list[tuple[int, dict[str, str], Any]]
    received: list[tuple[str, str, bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def server() -> Iterator[Scripted]:
    scripted = Scripted(script=[])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            scripted.received.append((self.command, self.path, body))
            turn = min(len(scripted.received), len(scripted.script)) - 1
            status, headers, payload = scripted.script[turn]
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield scripted
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_503_twice_then_200_is_retried_to_the_answer(server: Scripted) -> None:
    server.script = [_error(503, "unavailable"), _error(503, "unavailable"), (200, {}, HITS)]
    with Client(server.url, "key", retry=FAST) as client:
        found = client.search("q", k=1)
    assert found.mode == "lexical" and found.results == []
    assert len(server.received) == 3
    # Each attempt sends the same request again, body included.
    assert len({body for _, _, body in server.received}) == 1
    assert json.loads(server.received[0][2])["q"] == "q"


def test_an_upload_is_sent_again_whole(server: Scripted) -> None:
    uploaded = {"id": "a-1", "filename": "a.txt", "status": "queued", "status_url": "/d/a-1"}
    server.script = [_error(503, "unavailable"), (202, {}, {"documents": [uploaded]})]
    with Client(server.url, "key", retry=FAST) as client:
        [doc] = client.upload(("a.txt", b"hello there"), metadata={"x": "y"})
    assert doc.id == "a-1"
    first, second = (_unbounded(body) for _, _, body in server.received)
    assert b"hello there" in first and first == second


def test_the_async_client_retries_503_too(server: Scripted) -> None:
    server.script = [_error(503, "unavailable"), _error(503, "unavailable"), (200, {}, HITS)]

    async def search() -> Any:
        async with AsyncClient(server.url, "key", retry=FAST) as client:
            return await client.search("q")

    assert asyncio.run(search()).results == []
    assert len(server.received) == 3


def test_429_waits_as_long_as_retry_after_says(server: Scripted) -> None:
    server.script = [
        (429, {"Retry-After": "0"}, {"error": {"code": "rate_limited"}}),
        (200, {}, HITS),
    ]
    with Client(server.url, "key", retry=FAST) as client:
        assert client.search("q").results == []
    assert len(server.received) == 2


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(422, "invalid_filter", InvalidRequest), (404, "not_found", NotFound), (400, "bad", RagError)],
)
def test_other_4xx_are_never_retried(
    server: Scripted, status: int, code: str, kind: type[RagError]
) -> None:
    server.script = [_error(status, code), (200, {}, HITS)]
    with Client(server.url, "key", retry=FAST) as client, pytest.raises(kind) as raised:
        client.search("q", filter={"$nope": 1})
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.message == f"said {code}"
    assert len(server.received) == 1


def test_503_that_persists_ends_as_unavailable_after_the_attempts(server: Scripted) -> None:
    server.script = [_error(503, "unavailable")]
    with Client(server.url, "key", retry=FAST) as client, pytest.raises(Unavailable) as raised:
        client.document("x")
    assert raised.value.code == "unavailable"
    assert len(server.received) == FAST.attempts


def test_an_unhealthy_health_is_an_answer_not_an_error(server: Scripted) -> None:
    degraded = {"status": "degraded", "checks": {"index": "error: X"}, "warm": False}
    server.script = [(503, {}, degraded)]
    with Client(server.url, retry=FAST) as client:
        assert client.health().status == "degraded"
    assert len(server.received) == 1


@pytest.mark.slow
def test_a_server_that_is_not_there_is_retried_then_a_connection_error(server: Scripted) -> None:
    server.script = [(200, {}, HITS)]
    closed = server.url.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens on loopback
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.method)]})
    with (
        Client(closed, "key", retry=FAST, http=http) as client,
        pytest.raises(ConnectionFailed) as raised,
    ):
        client.search("q")
    assert raised.value.code == "connection_failed" and raised.value.status is None
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert sent == ["POST"] * FAST.attempts
    assert server.received == []
