"""Processes of the local stack: free loopback ports, servers started without losing a race for
their port, and process groups started and stopped whole.

A port found free is released before the server binds it, so another process may take it
meanwhile; `start_server` notices (the server exits, or someone else answers) and retries.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port free at this moment. It is released before a server binds it, so
    another process may take it meanwhile: start servers with `start_server`, which retries."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening socket on loopback `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(OSError):
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    return False


def _comes_up(proc: subprocess.Popen[bytes], port: int, ready_path: str, timeout: float) -> bool:
    """True once `proc` answers on `port`; False if it exits first (it could not bind)."""
    url = f"http://127.0.0.1:{port}{ready_path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                # Whoever took the port may answer too: only our own socket counts.
                if _listens(proc.pid, port):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=30)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def start_server(
    launch: Callable[[int], subprocess.Popen[bytes]],
    ready_path: str,
    port: int | None = None,
    attempts: int = 6,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server with `launch(port)` and wait until `ready_path` answers; returns
    (process, port).

    Without a port, each attempt takes a fresh free one, since another process may take the
    one found before the server binds it. With a port (a restart: clients know it), attempts
    back off while something else still holds it, then fail saying so.
    """
    for attempt in range(1, attempts + 1):
        chosen = port or free_port()
        proc = launch(chosen)
        if _comes_up(proc, chosen, ready_path, timeout):
            return proc, chosen
        if port is not None and attempt < attempts:
            time.sleep(min(0.5 * 2**attempt, 8.0))
    where = f"port {port}, held by another process" if port else "a fresh port each time"
    raise RuntimeError(
        f"the server exited {attempts} times before answering on {where} "
        f"(last exit code {proc.returncode}; see its log)"
    )


def chroma_command(path: Path, port: int) -> list[str]:
    where = ["--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    return [str(BIN / "chroma"), "run", *where]


def start_chroma(
    path: Path, log: Path | None = None, port: int | None = None, **popen: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """A Chroma server with its data at `path`, on a free loopback port or on `port` (a
    restart); returns (process, URL). `popen` goes to subprocess.Popen."""

    def launch(chosen: int) -> subprocess.Popen[bytes]:
        with log.open("ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as out:
            return subprocess.Popen(
                chroma_command(path, chosen), stdout=out, stderr=subprocess.STDOUT, **popen
            )

    proc, chosen = start_server(launch, "/api/v2/heartbeat", port)
    return proc, f"http://127.0.0.1:{chosen}"


def wait_until_warm(base: str, timeout: float = 300.0) -> None:
    """Until the API says start-up has loaded the model, the lexical index and the facets
    (`GET /health` `warm`): measuring before would share the cores with that loading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
                warm = json.load(response).get("warm")
        except urllib.error.HTTPError as exc:  # 503 while a store is down: still has a body
            warm = json.load(exc).get("warm")
        if warm:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base} did not warm up in {timeout:.0f} s")
        time.sleep(0.2)


def start_group(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a session of its own, logging to `log`, so `stop` takes whatever it
    started with it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """Stop a process started in a session of its own, and whatever it started, for sure."""
    signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_seconds)
    # Children can outlive their leader (run workers, fork servers): the group goes with it.
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_all(procs: list[subprocess.Popen[bytes]], grace_seconds: float = 30) -> None:
    """`stop` for several processes at once: each is sent TERM first, then each waited for,
    so their shutdowns overlap rather than add up."""
    for proc in procs:
        signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        stop(proc, grace_seconds=0)


@contextlib.contextmanager
def process_group(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own group, logging to `log_path`, for the block; the whole group is
    stopped at exit (TERM, then KILL after 30 s), so whatever it started goes with it."""
    proc = start_group(command, env, log_path)
    try:
        yield proc
    finally:
        stop(proc)


def process_group_of(pid: int) -> int | None:
    """The process group `pid` belongs to; None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _stat(proc: Path) -> list[str]:
    # Fields after the command name (which may hold spaces), from field 3 (state) on.
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()


def in_groups(groups: list[int]) -> Iterator[tuple[int, str]]:
    """(pid, command line) of every live process in any of the process groups."""
    wanted = set(groups)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int(_stat(proc)[2]) in wanted:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                yield int(proc.name), cmd
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked


def group_cpu(pgid: int) -> tuple[float, float]:
    """(spawned, the rest) CPU seconds of a live process group, read from /proc.

    In the daemon's group, the daemon and its code servers count apart from everything they
    started: run workers under the default launcher, their extraction fork servers, and exited
    ones, reaped (cutime+cstime) or zombies (whose cmdline is empty). In any other group every
    process counts as spawned.
    """
    tick = os.sysconf("SC_CLK_TCK")
    spawned = rest = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = _stat(proc)
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone while we looked
        if int(stat[2]) != pgid:  # stat[2] is pgrp, field 5 of proc_pid_stat(5)
            continue
        own = (int(stat[11]) + int(stat[12])) / tick
        is_spawned = b"dagster-daemon" not in cmdline and b"api\0grpc" not in cmdline
        spawned += (int(stat[13]) + int(stat[14])) / tick + (own if is_spawned else 0.0)
        rest += 0.0 if is_spawned else own
    return round(spawned, 2), round(rest, 2)


def stop_on_sigterm() -> None:
    """A SIGTERM to the benchmark raises KeyboardInterrupt, so the stack it started is stopped."""

    def _raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise_interrupt)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""
