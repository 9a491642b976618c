"""Starting a test server on a loopback port, without losing a race for the port.

A port found free is released before the server binds it, so another process may take it
meanwhile; `start_server` notices (the server exits, or someone else answers) and retries.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def process_group_of(pid: int) -> int | None:
    """The process group `pid` belongs to; None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


@contextmanager
def process_group(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own group, logging to `log_path`; the whole group is stopped at exit
    (TERM, then KILL after 30 s), so whatever it started goes with it."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
