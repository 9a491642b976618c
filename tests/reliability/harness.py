"""The stack under test and the checks that say whether anything was lost.

`Stack` runs the Chroma server, the Dagster daemon and the API as separate processes on
loopback, each in its own process group, and can kill any of them with SIGKILL and start it
again on the same port and data. `audit` compares what the API says with what the stores hold.
"""

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from conftest import BIN, INIT_INSTANCE, REPO, free_port, make_dagster_home, wait_for_http

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


class Stack:
    """Chroma, the daemon and the API for one temporary data dir and Dagster home."""

    def __init__(self, root: Path, model: str, **env: str) -> None:
        self.root = root
        self.data = root / "data"
        self.home = root / "dagster_home"
        self.chroma_dir = root / "chroma"
        make_dagster_home(self.home, "sqlite")
        self.chroma_url = f"http://127.0.0.1:{free_port()}"
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "RAG_DATA_DIR": str(self.data),
            "RAG_CHROMA_URL": self.chroma_url,
            "RAG_CHROMA_COLLECTION": f"reliability-{uuid.uuid4().hex[:8]}",
            "RAG_EMBEDDING_MODEL": model,
            "RAG_API_PORT": self.api_url.rsplit(":", 1)[1],
            "RAG_API_KEY": API_KEY,
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Every process group ever started: a killed daemon leaves its code server behind.
        self.groups: list[int] = []

    def command(self, name: str) -> list[str]:
        if name == "chroma":
            host, port = self.chroma_url.removeprefix("http://").split(":")
            path = str(self.chroma_dir)
            return [str(BIN / "chroma"), "run", "--path", path, "--host", host, "--port", port]
        if name == "daemon":
            return [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
        if name == "api":
            return [str(BIN / "rag-api")]
        raise ValueError(name)

    def start(self, name: str) -> None:
        with (self.root / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                self.command(name),
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        self.groups.append(proc.pid)
        if name == "chroma":
            wait_for_http(f"{self.chroma_url}/api/v2/heartbeat", timeout=60)
        elif name == "api":
            wait_for_http(f"{self.api_url}/health", timeout=120)

    def start_all(self) -> None:
        # A fresh SQLite instance initialised by the daemon, its code server and the API at the
        # same moment can end up with two alembic heads and never load: create it first.
        subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=self.env, check=True)
        for name in ("chroma", "daemon", "api"):
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL the process itself, as the OOM killer would; its children live on."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

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

    def run_workers(self) -> list[int]:
        """Run worker processes: what the code server spawns for each run it launches."""
        return [
            pid
            for pid, cmd in _processes(self.groups)
            if "spawn_main" in cmd and _parent_is_code_server(pid)
        ]

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


def _parent_is_code_server(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        parent = Path(f"/proc/{fields[1]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError):
        return False
    return "api grpc" in parent or "code-server" in parent


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


@dataclass
class Audit:
    """What the stores hold against what the API says, for every document it knows."""

    chroma_count: int
    catalog_chunks_live: int
    orphan_vectors: list[str] = field(default_factory=list)
    mismatched: dict[str, str] = field(default_factory=dict)
    same_bytes_twice: list[list[str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Vectors that should not be there, plus documents ingested twice from the same bytes."""
        return len(self.orphan_vectors) + sum(len(g) - 1 for g in self.same_bytes_twice)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chroma_count": self.chroma_count,
            "catalog_chunks_of_live_documents": self.catalog_chunks_live,
            "duplicates": self.duplicates,
            "orphan_vectors": len(self.orphan_vectors),
            "status_mismatches": len(self.mismatched),
        }


def chroma_ids(stack: Stack) -> list[str]:
    import chromadb
    from chromadb.config import Settings

    host, port = stack.chroma_url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_collection(stack.env["RAG_CHROMA_COLLECTION"])
    ids: list[str] = []
    while True:
        batch = collection.get(include=[], limit=5000, offset=len(ids))
        ids.extend(batch["ids"])
        if len(batch["ids"]) < 5000:
            return ids


def _instance_disagrees(stack: Stack, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The registry's projection against the instance: every document the registry calls
    indexed has a vector_index materialization since it was registered, every failed one a
    failed stage or run."""
    from datetime import datetime

    from dagster import AssetKey, AssetRecordsFilter

    wrong: dict[str, str] = {}
    with stack.instance() as instance:
        for doc_id, doc in docs.items():
            if doc["status"] not in ("indexed", "failed") or doc_id.startswith("rejected:"):
                continue
            since = datetime.fromisoformat(doc["created_at"]).timestamp()
            stage = "vector_index" if doc["status"] == "indexed" else doc["error"]["stage"]
            records_filter = AssetRecordsFilter(
                asset_key=AssetKey(stage), asset_partitions=[doc_id], after_timestamp=since
            )
            if doc["status"] == "indexed":
                found = instance.fetch_materializations(records_filter, limit=1).records
            elif doc["error"]["code"] == "run_failed":
                found = [r for r in doc["run_ids"] if instance.get_run_by_id(r)]
            else:
                found = instance.fetch_observations(records_filter, limit=1).records
            if not found:
                wrong[doc_id] = f"{doc['status']} in the registry, not so in the instance"
    return wrong


def audit(stack: Stack, client: httpx.Client) -> Audit:
    import pyarrow.parquet as pq

    from rag_pipeline.core.store import DocumentStore

    docs = all_documents(client)
    registry = DocumentStore(stack.data).registry
    ids = chroma_ids(stack)
    by_doc: dict[str, set[str]] = {}
    for vector_id in ids:
        by_doc.setdefault(vector_id.rsplit(":", 1)[0], set()).add(vector_id)
    catalog = stack.data / "catalog"
    live_chunks = 0
    mismatched: dict[str, str] = {}
    by_sha: dict[str, list[str]] = {}
    for doc_id, doc in docs.items():
        status = doc["status"]
        vectors = by_doc.get(doc_id, set())
        if status == "indexed":
            path = catalog / "chunks" / f"{doc_id}.parquet"
            chunks = pq.read_metadata(path).num_rows if path.exists() else 0
            live_chunks += chunks
            expected = {f"{doc_id}:{n}" for n in range(chunks)}
            if not chunks or vectors != expected or doc.get("chunks") != chunks:
                mismatched[doc_id] = (
                    f"indexed, status says {doc.get('chunks')} chunks, catalog {chunks}, "
                    f"{len(vectors)} vectors"
                )
            row = registry.get(doc_id)
            if row is not None and row.sha256:
                by_sha.setdefault(row.sha256, []).append(doc_id)
        elif status in ("queued", "processing"):
            mismatched[doc_id] = f"{status} after ingestion settled"
        elif vectors:
            mismatched[doc_id] = f"{status} but {len(vectors)} vectors"
    mismatched.update(_instance_disagrees(stack, docs))
    listed = {d for d, doc in docs.items() if doc["status"] == "indexed"}
    orphans = sorted(v for d, vs in by_doc.items() if d not in listed for v in vs)
    return Audit(
        chroma_count=len(ids),
        catalog_chunks_live=live_chunks,
        orphan_vectors=orphans,
        mismatched=mismatched,
        same_bytes_twice=[g for g in by_sha.values() if len(g) > 1],
    )


def healthy(stack: Stack) -> dict[str, bool]:
    """Each process alive and answering: the API's /health covers the instance and Chroma."""
    try:
        health = httpx.get(f"{stack.api_url}/health", timeout=10).status_code == 200
    except httpx.TransportError:
        health = False
    return {
        "chroma": stack.alive("chroma"),
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
