"""Faults mid-ingest: kill -9 of a run worker, the daemon, the API and the Chroma server, each
followed by a restart. Every document still reaches its terminal state with no manual step,
and nothing is indexed twice. Time to recover is from the kill to the last document indexed.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from reliability.audit import Scope, audit
from reliability.harness import (
    FULL,
    Stack,
    healthy,
    pool_claimed,
    ran_at,
    request,
    synthetic_text,
    wait_terminal,
)

pytestmark = pytest.mark.reliability

# The short version kills a run worker mid-write and Chroma mid-index; the full one all four.
FAULTS = ["run_worker", "daemon", "api", "chroma"] if FULL else ["run_worker", "chroma"]
BATCH = 8
# Long enough that a run spends seconds in each stage, so the kill lands mid-run.
PARAGRAPHS = 40 if FULL else 60


def _stage_reached(docs: dict[str, dict[str, Any]], stage: str) -> bool:
    return any(
        d.get("stages", {}).get(stage, {}).get("state") == "materialized" for d in docs.values()
    )


def _poll(
    client: Any, ids: set[str], until: Callable[[dict[str, dict[str, Any]]], bool], limit: float
) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        docs = {i: request(client, "GET", f"/documents/{i}").json() for i in ids}
        if until(docs):
            return True
        if all(d["status"] == "indexed" for d in docs.values()):
            return False  # finished before the fault could land
        time.sleep(0.2)
    return False


def _upload_batch(client: Any, fault: str) -> set[str]:
    ids = set()
    base = 10_000 + 100 * FAULTS.index(fault)
    for n in range(base, base + BATCH):
        data = synthetic_text(n, paragraphs=PARAGRAPHS)
        response = request(client, "POST", "/documents", files={"file": (f"{fault}-{n}.txt", data)})
        assert response.status_code == 202, response.text
        ids.add(response.json()["documents"][0]["id"])
    return ids


def inject(stack: Stack, client: Any, fault: str) -> tuple[set[str], float, float]:
    """Upload a batch, kill at the right moment, restart; returns (ids, kill time, restart s)."""
    if fault == "api":
        return _api_fault(stack, client)
    ids = _upload_batch(client, fault)
    if fault == "run_worker":
        # Mid-embedding: the batch's chunks are written and the run is still going.
        landed = _poll(
            client,
            ids,
            lambda d: _stage_reached(d, "document_chunks") and bool(stack.run_workers()),
            300,
        )
        assert landed, "the run finished before the worker could be killed"
        killed = time.monotonic()
        for pid in stack.run_workers():
            stack.kill_pid(pid)
        return ids, killed, 0.0
    if fault == "daemon":
        landed = _poll(
            client,
            ids,
            lambda d: bool(stack.run_workers()) and _stage_reached(d, "raw_document"),
            300,
        )
        assert landed, "no run started"
        killed = time.monotonic()
        stack.kill("daemon")
        stack.start("daemon")
        return ids, killed, time.monotonic() - killed
    assert fault == "chroma"
    with stack.instance() as instance:
        deadline = time.monotonic() + 300
        # Mid-index: the run holds the index-write slot, or its embeddings are just written.
        while time.monotonic() < deadline:
            docs = {i: request(client, "GET", f"/documents/{i}").json() for i in ids}
            if pool_claimed(instance) or _stage_reached(docs, "chunk_embeddings"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the run never reached the index stage")
    killed = time.monotonic()
    stack.kill("chroma")
    time.sleep(2)
    stack.start("chroma")
    return ids, killed, time.monotonic() - killed


def _api_fault(stack: Stack, client: Any) -> tuple[set[str], float, float]:
    """Uploads keep coming while the API dies: every 2xx must be kept, the rest retried."""
    accepted: set[str] = set()
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()
    base = 10_000 + 100 * FAULTS.index("api")

    def uploader() -> None:
        try:
            with stack.client() as own:
                for n in range(base, base + 3 * BATCH):
                    if stop.is_set():
                        return
                    data = synthetic_text(n, paragraphs=3)
                    response = request(
                        own, "POST", "/documents", files={"file": (f"api-{n}.txt", data)}
                    )
                    if response.status_code in (200, 202):
                        with lock:
                            accepted.add(response.json()["documents"][0]["id"])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=uploader)
    thread.start()
    try:
        while len(accepted) < BATCH and thread.is_alive():
            time.sleep(0.05)
        killed = time.monotonic()
        stack.kill("api")
        stack.start("api")
        restart = time.monotonic() - killed
        thread.join(timeout=300)
        assert not thread.is_alive(), "the uploader did not finish within 300 s"
    finally:
        # A failure above must not leave the uploader running into the next part.
        stop.set()
        thread.join(timeout=300)
    assert not errors, errors
    return accepted, killed, restart


def retries_since(stack: Stack, since: float) -> dict[str, int]:
    """Runs the daemon launched again after a crash, and steps retried by their RetryPolicy."""
    from dagster import DagsterEventType, RunsFilter

    with stack.instance() as instance:
        runs = instance.get_runs(filters=RunsFilter(updated_after=_utc(since)))
        return {
            "run_retries": sum(1 for r in runs if "dagster/parent_run_id" in r.tags),
            "runs_failed": sum(1 for r in runs if r.status.value == "FAILURE"),
            "step_retries": sum(
                len(instance.all_logs(r.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY))
                for r in runs
            ),
        }


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


@pytest.mark.parametrize("fault", FAULTS)
def test_documents_recover_from_a_kill_without_manual_steps(
    stack: Stack, fault: str, reliability_report: dict[str, Any]
) -> None:
    with stack.client() as client:
        ids, killed, restart = inject(stack, client, fault)
        reports, _ = wait_terminal(
            client, ids, timeout=900 if FULL else 240, done=lambda d: d["status"] == "indexed"
        )
        recovered = time.monotonic() - killed
        state = audit(stack, client, Scope(frozenset(ids), part=fault))
    retries = retries_since(stack, time.time() - recovered)
    statuses = {i: reports[i]["status"] for i in ids}
    not_indexed = {i: s for i, s in statuses.items() if s != "indexed"}
    runs = sorted({r for d in reports.values() for r in d.get("run_ids", [])})
    figures = reliability_report.setdefault("faults", {})
    figures[fault] = {
        **ran_at(),
        "documents": len(ids),
        "documents_lost": len(not_indexed),
        "seconds_to_restart": round(restart, 1),
        "seconds_to_recover": round(recovered, 1),
        "runs_of_the_batch": len(runs),
        **retries,
        "healthy_after": healthy(stack),
        **state.to_dict(),
    }
    assert not not_indexed, not_indexed
    if fault == "run_worker":
        assert retries["run_retries"] >= 1, "the killed run was not retried"
    if fault == "chroma":
        assert retries["run_retries"] + retries["step_retries"] >= 1, "nothing was retried"
    assert state.duplicates == 0, state.orphan_vectors[:10]
    assert not state.mismatched, state.mismatched
    assert state.chroma_count == state.catalog_chunks_live
    assert all(figures[fault]["healthy_after"].values())
