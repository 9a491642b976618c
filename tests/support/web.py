"""A web site on loopback (the standard library's HTTP server, in a thread) for fetch tests.

It serves corpus files and the ways a remote misbehaves:
- `/corpus/<path>`: a corpus file, typed by its suffix;
- `/download`: a corpus PDF under a name given by Content-Disposition only;
- `/redirect?to=<url>`: 302 to it; `/loop`: redirects to itself, forever;
- `/endless`: a chunked body that never ends; `/huge`: one that declares 4 MB and sends them;
- `/drip`: a byte every 0.1 s, never ending; `/stall`: headers, then silence;
- a page put with `serve(path, data)`: with an ETag and a Last-Modified, answered 304 to a
  request that sends either back (`fail(path, status)` makes it answer 404, 410, 503...);
  one served with `declared=False` has no Content-Length, so only counting the body tells
  its size;
- anything else: 404.
Every request's Host header is kept, in order, in `hosts`, and every request in `requests`.

Modules take the fixture with `pytest_plugins = ["support.web"]`.
"""

import contextlib
import email.utils
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

PDF = "pdf/sf_minimal-document.pdf"
_TYPES = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf"}


@dataclass(frozen=True)
class Request:
    path: str  # with its query
    host: str
    conditional: bool  # it sent If-None-Match or If-Modified-Since


@dataclass(frozen=True)
class Page:
    data: bytes
    kind: str
    status: int = 200
    declared: bool = True  # False: no Content-Length, the body ends when the connection does

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.data).hexdigest()[:16] + '"'


# Every page's Last-Modified: its ETag tells versions apart.
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


class Site:
    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus
        self.hosts: list[str] = []
        self.requests: list[Request] = []
        self.pages: dict[str, Page] = {}
        self.stopping = threading.Event()
        site = self

        class Handler(_Handler):
            owner = site

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(
        self, path: str, data: bytes, kind: str = _TYPES[".html"], declared: bool = True
    ) -> None:
        self.pages[path] = Page(data, kind, declared=declared)

    def fail(self, path: str, status: int = 404) -> None:
        self.pages[path] = Page(b"no page here", "text/plain", status)

    def asked(self, path: str) -> list[Request]:
        """The requests of `path` so far."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: Site
    timeout = 10  # a client that stops reading frees its thread
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.owner.hosts.append(self.headers.get("Host", ""))
        since, match = self.headers.get("If-Modified-Since"), self.headers.get("If-None-Match")
        self.owner.requests.append(
            Request(self.path, self.headers.get("Host", ""), bool(since or match))
        )
        url = urlsplit(self.path)
        page = self.owner.pages.get(url.path)
        if page is not None:
            self._page(page, since, match)
        elif url.path.startswith("/corpus/"):
            path = self.owner.corpus / url.path.removeprefix("/corpus/")
            self._send(path.read_bytes(), _TYPES.get(path.suffix, "application/octet-stream"))
        elif url.path == "/download":
            disposition = 'attachment; filename="quarterly report.pdf"'
            data = (self.owner.corpus / PDF).read_bytes()
            self._send(data, "application/octet-stream", {"Content-Disposition": disposition})
        elif url.path == "/redirect":
            self._redirect(parse_qs(url.query)["to"][0])
        elif url.path == "/loop":
            self._redirect("/loop")
        elif url.path == "/endless":
            self._stream(b"<p>" + b"more " * 2000 + b"</p>\n", pause=0)
        elif url.path == "/huge":
            size = 4 * 1024 * 1024
            self._send(b"x" * size, "text/plain")
        elif url.path == "/drip":
            self._stream(b"x", pause=0.1)
        elif url.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.owner.stopping.wait(30)
        else:
            self._send(b"not here", "text/plain", status=404)

    def _send(
        self, data: bytes, kind: str, headers: dict[str, str] | None = None, status: int = 200
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may hang up whenever it wants
            self.wfile.write(data)

    def _page(self, page: Page, since: str | None, match: str | None) -> None:
        if page.status != 200:
            self._send(page.data, page.kind, status=page.status)
        elif match == page.etag or (match is None and since == LAST_MODIFIED):
            self.send_response(304)
            self.send_header("ETag", page.etag)
            self.end_headers()
        elif page.declared:
            headers = {"ETag": page.etag, "Last-Modified": LAST_MODIFIED}
            self._send(page.data, page.kind, headers)
        else:
            self.send_response(200)
            self.send_header("Content-Type", page.kind)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.write(page.data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, piece: bytes, pause: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        frame = b"%x\r\n%s\r\n" % (len(piece), piece)
        try:
            while not self.owner.stopping.is_set():
                self.wfile.write(frame)
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:
            pass  # the client hung up


@pytest.fixture()
def site(corpus: Path) -> Iterator[Site]:
    server = Site(corpus)
    server.start()
    try:
        yield server
    finally:
        server.stop()
