"""Starting the test servers: a port taken between choosing and binding it is not a failure.

`start_server` is what Chroma, the API and the reliability stack start through. These use a
small stand-in server (Python's http.server), which exits when it cannot bind, as Chroma and
uvicorn do.
"""

import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from bench.harness import processes
from bench.harness.processes import free_port, start_server


def _http_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture()
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=30)


def _launcher(procs: list[subprocess.Popen[bytes]], tried: list[int]):  # type: ignore[no-untyped-def]
    def launch(port: int) -> subprocess.Popen[bytes]:
        tried.append(port)
        procs.append(_http_server(port))
        return procs[-1]

    return launch


def _answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return bool(response.status == 200)


@pytest.mark.parametrize("grabbed_by", ["a bare socket", "another http server"])
def test_a_port_grabbed_before_the_bind_is_retried_on_a_fresh_one(
    procs, monkeypatch: pytest.MonkeyPatch, grabbed_by: str
) -> None:
    taken = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", taken))
    holder.listen()
    if grabbed_by == "another http server":
        # It answers on the port; only the server we started may count as up.
        holder.close()
        procs.append(foreign := _http_server(taken))
        assert start_server(lambda p: foreign, "/", port=taken)[1] == taken
    ports = iter([taken])
    monkeypatch.setattr(processes, "free_port", lambda: next(ports, None) or free_port())
    tried: list[int] = []

    try:
        proc, port = start_server(_launcher(procs, tried), "/", timeout=30)
    finally:
        holder.close()

    assert tried[0] == taken and port != taken and tried[-1] == port
    assert proc.poll() is None and _answers(port)


def test_a_restart_on_a_held_port_backs_off_then_takes_it(procs) -> None:
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    tried: list[int] = []
    launch = _launcher(procs, tried)

    def released_on_the_third_try(chosen: int) -> subprocess.Popen[bytes]:
        if len(tried) == 2:
            holder.close()
        return launch(chosen)

    proc, got = start_server(released_on_the_third_try, "/", port=port, timeout=30)

    assert tried == [port] * 3 and got == port
    assert proc.poll() is None and _answers(port)


def test_a_restart_on_a_port_that_stays_held_fails_saying_so(procs) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        tried: list[int] = []
        with pytest.raises(RuntimeError, match=f"port {port}, held by another process"):
            start_server(_launcher(procs, tried), "/", port=port, attempts=3, timeout=30)
    assert tried == [port] * 3
