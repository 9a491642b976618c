"""The stack under test and the checks that say whether anything was lost.

`Stack` runs the Chroma server, the warm run worker (`rag-pipeline worker`), the Dagster daemon
and the API as separate processes on loopback, each in its own process group, and can kill any
of them (or its whole group) with SIGKILL and start it again on the same port and data.
`reliability.audit` compares what the API says with what the stores hold.
"""

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from support.env import BIN, INIT_INSTANCE, REPO, make_dagster_home
from support.runs import executing
from support.servers import start_server

FULL = os.environ.get("RELIABILITY", "short") == "full"
REAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
API_KEY = "reliability-key"
TERMINAL = {"indexed", "failed", "rejected", "deleted"}
INDEX_WRITE_POOL = "vector_index_writes"
# Transport errors a client sees while the API is down or restarting; it retries them.
RETRYABLE = (httpx.TransportError,)
MAX_UPLOAD_MB = 8
# Waiting for ingestion gives up once no document has moved for this long.
STALL_SECONDS = 600.0 if FULL else 120.0
# Started in this order: the worker before the daemon, so the first runs find it.
PROCESSES = ("chroma", "worker", "daemon", "api")


class Stack:
    """Chroma, the run worker, the daemon and the API for one temporary data dir and Dagster
    home."""

    def __init__(self, root: Path, model: str, **env: str) -> None:
        self.root = root
        self.data = root / "data"
        self.home = root / "dagster_home"
        self.chroma_dir = root / "chroma"
        make_dagster_home(self.home, "sqlite")
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "RAG_DATA_DIR": str(self.data),
            "RAG_CHROMA_COLLECTION": f"reliability-{uuid.uuid4().hex[:8]}",
            "RAG_EMBEDDING_MODEL": model,
            "RAG_API_KEY": API_KEY,
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Chosen at the first start; a restart binds the same one, as clients know it.
        self.ports: dict[str, int] = {}
        # Every process group ever started: a killed daemon leaves its code server behind.
        self.groups: list[int] = []

    @property
    def chroma_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['chroma']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def command(self, name: str, port: int | None = None) -> list[str]:
        if name == "chroma":
            where = ["--path", str(self.chroma_dir), "--host", "127.0.0.1", "--port", str(port)]
            return [str(BIN / "chroma"), "run", *where]
        if name == "daemon":
            return [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
        if name == "worker":
            return [str(BIN / "rag-pipeline"), "worker"]
        if name == "api":
            return [str(BIN / "rag-api")]
        raise ValueError(name)

    def _launch(self, name: str, port: int | None = None) -> subprocess.Popen[bytes]:
        if name == "chroma":
            self.env["RAG_CHROMA_URL"] = f"http://127.0.0.1:{port}"
        elif name == "api":
            self.env["RAG_API_PORT"] = str(port)
        with (self.root / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                self.command(name, port),
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(proc.pid)
        return proc

    def start(self, name: str) -> None:
        """Start one process; Chroma and the API on their port of before, or a free one."""
        if name in ("daemon", "worker"):
            self.procs[name] = self._launch(name)
            return
        ready, timeout = ("/api/v2/heartbeat", 60) if name == "chroma" else ("/health", 120)
        self.procs[name], self.ports[name] = start_server(
            lambda port: self._launch(name, port), ready, self.ports.get(name), timeout=timeout
        )

    def start_all(self) -> None:
        # A fresh SQLite instance initialised by the daemon, its code server and the API at the
        # same moment can end up with two alembic heads and never load: create it first.
        subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=self.env, check=True)
        for name in PROCESSES:
            self.start(name)

    def revive(self) -> None:
        """Start whatever is not running, e.g. what a failed part killed and never restarted."""
        for name in PROCESSES:
            if name not in self.procs or not self.alive(name):
                self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL the process itself, as the OOM killer would; its children live on."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def kill_group(self, *names: str) -> None:
        """SIGKILL each named process and everything in its group at once, as when their host
        or container dies: the daemon with its code server, the worker with its warm
        processes and their extraction children."""
        procs = [self.procs[name] for name in names]
        for proc in procs:
            _signal_group(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        groups = [proc.pid for proc in procs]
        while any(True for _ in _processes(groups)) and time.monotonic() < deadline:
            time.sleep(0.1)  # children die a moment after their group's signal

    def kill_pid(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self) -> None:
        for pgid in reversed(self.groups):
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for pgid in self.groups:
            _signal_group(pgid, signal.SIGKILL)

    def executing(self) -> dict[str, int]:
        """Runs executing now, each with the pid of the warm worker process executing it, for
        processes of this stack."""
        with self.instance() as instance:
            runs = executing(instance)
        mine = {pid for pid, _ in _processes(self.groups)}
        here = socket.gethostname()
        return {run: pid for run, (host, pid) in runs.items() if host == here and pid in mine}

    def run_workers(self) -> list[int]:
        """The processes executing runs right now: the worker's prefork children named by the
        runs they execute (a child between runs is not one)."""
        return sorted(set(self.executing().values()))

    def instance(self) -> Any:
        from dagster import DagsterInstance

        return DagsterInstance.from_config(str(self.home))

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=timeout,
        )


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _processes(groups: list[int]) -> Iterator[tuple[int, str]]:
    wanted = set(groups)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pgid = int(fields[2])
            if pgid in wanted:
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                yield int(stat.parent.name), cmd
        except (OSError, IndexError, ValueError):
            continue


def ran_at() -> dict[str, str]:
    """When a part ran and on what code, so a report of several partial runs stays honest."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    code_changed = git("status", "--porcelain", "--", "rag_pipeline", "rag_api", "tests").strip()
    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return {
        "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": f"{commit}+uncommitted" if code_changed else commit,
    }


def request(
    client: httpx.Client, method: str, url: str, deadline: float = 120, **kwargs: Any
) -> httpx.Response:
    """One request, retried on transport errors (API down or restarting) until the deadline."""
    end = time.monotonic() + deadline
    while True:
        try:
            return client.request(method, url, **kwargs)
        except RETRYABLE:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


def all_documents(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every document the API lists, by id."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = request(client, "GET", "/documents", params={"limit": 500, "offset": offset})
        assert page.status_code == 200, page.text
        body = page.json()
        for item in body["items"]:
            found[item["id"]] = item
        offset += len(body["items"])
        if offset >= body["total"] or not body["items"]:
            return found


def wait_terminal(
    client: httpx.Client,
    ids: set[str],
    timeout: float,
    done: Callable[[dict[str, Any]], bool] = lambda d: d["status"] in TERMINAL,
    stall: float = STALL_SECONDS,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Poll until every id is done (terminal by default); returns (last reports, seconds).

    Gives up after `timeout` seconds in all, or sooner once no document has moved (status or
    stage) for `stall` seconds: ingestion that keeps going may take long on a busy machine,
    ingestion that stopped will not finish.
    """
    started = last_change = time.monotonic()
    reports: dict[str, dict[str, Any]] = {}
    seen: dict[str, Any] = {}
    while True:
        listed = all_documents(client)
        for doc_id in ids:
            if doc_id in listed:
                reports[doc_id] = listed[doc_id]
            else:
                # Deleted and rejected-by-id documents are not listed; ask for them one by one.
                one = request(client, "GET", f"/documents/{doc_id}")
                reports[doc_id] = one.json() if one.status_code == 200 else {"status": "missing"}
        now = {
            i: (r["status"], json.dumps(r.get("stages"), sort_keys=True))
            for i, r in reports.items()
        }
        if now != seen:
            seen, last_change = now, time.monotonic()
        if all(doc_id in reports and done(reports[doc_id]) for doc_id in ids):
            return reports, time.monotonic() - started
        if time.monotonic() - started > timeout or time.monotonic() - last_change > stall:
            return reports, time.monotonic() - started
        time.sleep(2)


def healthy(stack: Stack) -> dict[str, bool]:
    """Each process alive and answering: the API's /health covers the instance and Chroma."""
    try:
        health = httpx.get(f"{stack.api_url}/health", timeout=10).status_code == 200
    except httpx.TransportError:
        health = False
    return {
        "chroma": stack.alive("chroma"),
        "worker": stack.alive("worker"),
        "daemon": stack.alive("daemon"),
        "api": stack.alive("api") and health,
    }


def pool_claimed(instance: Any) -> bool:
    """Whether a run holds the index-write slot right now: it is writing to Chroma."""
    info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
    return bool(info.claimed_slots)


_WORDS = [
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=3 + i % 7))
    for i in range(3000)
]


def synthetic_text(n: int, version: int = 1, paragraphs: int = 3) -> bytes:
    """A unique, readable-enough text document: paragraphs of words drawn from a fixed list."""
    rng = random.Random(n * 1000 + version)
    body = "\n\n".join(
        " ".join(rng.choices(_WORDS, k=60)).capitalize() + "." for _ in range(paragraphs)
    )
    return f"Document {n}, version {version}.\n\n{body}\n".encode()
