"""The stack under test and the checks that say whether anything was lost.

`Stack` is the benchmarks' stack (bench/harness/stack.py) with the suite's key and a collection
of its own: Chroma, the warm run worker, the Dagster daemon and the API as separate processes
on loopback, each in its own process group, any of which it can kill (or its whole group) with
SIGKILL and start again on the same port and data. `reliability.audit` compares what the API
says with what the stores hold.
"""

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support.runs import executing

from bench.harness.processes import in_groups
from bench.harness.stack import MODEL
from bench.harness.stack import Stack as LocalStack

FULL = os.environ.get("RELIABILITY", "short") == "full"
REAL_MODEL = MODEL
API_KEY = "reliability-key"
TERMINAL = {"indexed", "failed", "rejected", "deleted"}
INDEX_WRITE_POOL = "vector_index_writes"
# Transport errors a client sees while the API is down or restarting; it retries them.
RETRYABLE = (httpx.TransportError,)
MAX_UPLOAD_MB = 8
# Waiting for ingestion gives up once no document has moved for this long.
STALL_SECONDS = 600.0 if FULL else 120.0


class Stack(LocalStack):
    """The whole stack for one temporary folder, behind the suite's API key. A restart is not
    waited for: how soon the stack recovers is part of what the suite measures."""

    def __init__(self, root: Path, model: str, **env: str) -> None:
        super().__init__(
            root,
            model,
            api_key=API_KEY,
            wait_warm=False,
            RAG_CHROMA_COLLECTION=f"reliability-{uuid.uuid4().hex[:8]}",
            **env,
        )

    def executing(self) -> dict[str, int]:
        """Runs executing now, each with the pid of the warm worker process executing it, for
        processes of this stack."""
        with self.instance() as instance:
            runs = executing(instance)
        mine = {pid for pid, _ in in_groups(self.groups)}
        here = socket.gethostname()
        return {run: pid for run, (host, pid) in runs.items() if host == here and pid in mine}

    def run_workers(self) -> list[int]:
        """The processes executing runs right now: the worker's prefork children named by the
        runs they execute (a child between runs is not one)."""
        return sorted(set(self.executing().values()))

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=timeout,
        )


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
