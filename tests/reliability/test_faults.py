"""Faults mid-ingest, each followed by a restart: kill -9 of the process executing a run, of
the whole warm worker, of the daemon, the API and the Chroma server, and the issue's scenario
where everything that launched or executed runs dies at once (as when a host or container
does) and Chroma after it. Every document still reaches its terminal state with no manual step,
and nothing is indexed twice. Time to recover is from the kill to the last document indexed;
time to notice is from the kill until the last run it cut short was failed (then retried).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from reliability.audit import Scope, audit
from reliability.harness import (
    FULL,
    STALL_SECONDS,
    Stack,
    healthy,
    pool_claimed,
    request,
    synthetic_text,
    wait_terminal,
)
from support.env import CORPUS
from support.runs import failed_at, retries_of

from bench.harness.results import ran_at

pytestmark = pytest.mark.reliability

# The short version kills a run's process mid-write and Chroma mid-index; the full one all.
FAULTS = (
    ["run_worker", "worker", "daemon", "api", "chroma", "launcher_group"]
    if FULL
    else ["run_worker", "chroma"]
)
# Faults that kill the process executing a run: the run must be failed and retried.
CUTS_RUNS = {"run_worker", "worker", "launcher_group"}
# A dead worker is noticed within this long however it died (issue 13).
NOTICE_LIMIT_SECONDS = 120.0
# After a kill, a batch's documents may not move until its cut-short runs are failed (up to
# the notice limit) and their retries have started on a worker the kill made replace its
# process: waiting gives up only after a silence longer than both.
QUIET_SECONDS = max(STALL_SECONDS, NOTICE_LIMIT_SECONDS + 120.0)
BATCH = 8
# The scenario: 30 SQuAD articles through the API, the launching and executing
# process groups killed 20 s later, Chroma 23 s after their restart.
SQUAD = CORPUS / "retrieval" / "squad_v1.1_dev" / "docs"
ARTICLES = 30
GROUP_KILL_AFTER_SECONDS = 20.0
CHROMA_KILL_AFTER_SECONDS = 23.0
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


@dataclass
class Fault:
    """What a fault did: the documents it answers for, when it killed (monotonic and wall
    clock), how long the restart took, and the runs that were executing when it killed."""

    ids: set[str]
    killed: float
    restart: float = 0.0
    killed_at: float = field(default_factory=time.time)
    cut: list[str] = field(default_factory=list)


def _upload_batch(client: Any, fault: str) -> set[str]:
    ids = set()
    base = 10_000 + 100 * FAULTS.index(fault)
    for n in range(base, base + BATCH):
        data = synthetic_text(n, paragraphs=PARAGRAPHS)
        response = request(client, "POST", "/documents", files={"file": (f"{fault}-{n}.txt", data)})
        assert response.status_code == 202, response.text
        ids.add(response.json()["documents"][0]["id"])
    return ids


def _mid_embedding(stack: Stack, client: Any, ids: set[str]) -> None:
    """Wait until the batch's chunks are written and a run is still executing."""
    landed = _poll(
        client,
        ids,
        lambda d: _stage_reached(d, "document_chunks") and bool(stack.run_workers()),
        300,
    )
    assert landed, "the run finished before the worker could be killed"


def inject(stack: Stack, client: Any, fault: str) -> Fault:
    """Upload documents, kill at the right moment, restart."""
    if fault == "api":
        return _api_fault(stack, client)
    if fault == "launcher_group":
        return _launcher_group_fault(stack, client)
    ids = _upload_batch(client, fault)
    if fault == "run_worker":
        # The warm processes executing the batch's runs; the worker's parent lives on, sees
        # its child lost, and the task fails in the result backend.
        _mid_embedding(stack, client, ids)
        executing = stack.executing()
        done = Fault(ids, time.monotonic(), cut=list(executing))
        for pid in set(executing.values()):
            stack.kill_pid(pid)
        return done
    if fault == "worker":
        # The whole worker, parent and warm processes: nothing is left to report the loss, so
        # only the runs' silent heartbeats tell.
        _mid_embedding(stack, client, ids)
        done = Fault(ids, time.monotonic(), cut=list(stack.executing()))
        stack.kill_group("worker")
        stack.start("worker")
        done.restart = time.monotonic() - done.killed
        return done
    if fault == "daemon":
        landed = _poll(
            client,
            ids,
            lambda d: bool(stack.run_workers()) and _stage_reached(d, "raw_document"),
            300,
        )
        assert landed, "no run started"
        done = Fault(ids, time.monotonic())
        stack.kill("daemon")
        stack.start("daemon")
        done.restart = time.monotonic() - done.killed
        return done
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
    done = Fault(ids, time.monotonic())
    stack.kill("chroma")
    # Down until the pipeline has met its absence (a step up for retry, or a run failed, since
    # the kill), not for a guessed time; a batch indexed before the kill met nothing.
    met = _poll(client, ids, lambda docs: _met_its_absence(stack, docs, done.killed_at), 300)
    stack.start("chroma")
    done.restart = time.monotonic() - done.killed
    assert met, "the batch was indexed before Chroma went down, or never noticed it was down"
    return done


def _met_its_absence(stack: Stack, docs: dict[str, dict[str, Any]], since: float) -> bool:
    """A run of these documents has a step up for retry since `since`, or has failed."""
    from dagster import DagsterEventType, DagsterRunStatus

    with stack.instance() as instance:
        for run_id in {r for d in docs.values() for r in d.get("run_ids", [])}:
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status == DagsterRunStatus.FAILURE:
                return True
            retried = instance.all_logs(run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
            if any(entry.timestamp >= since for entry in retried):
                return True
    return False


def _launcher_group_fault(stack: Stack, client: Any) -> Fault:
    """Issue 13's failure: the daemon's whole process group (with its code server) and the
    worker's (with the processes executing runs) die at once mid-ingest and are restarted;
    Chroma dies a little later."""
    ids = set()
    for path in sorted(SQUAD.glob("*.txt"))[:ARTICLES]:
        name = f"launcher_group-{path.name}"
        response = request(client, "POST", "/documents", files={"file": (name, path.read_bytes())})
        assert response.status_code == 202, response.text
        ids.add(response.json()["documents"][0]["id"])
    time.sleep(GROUP_KILL_AFTER_SECONDS)
    done = Fault(ids, time.monotonic(), cut=list(stack.executing()))
    assert done.cut, f"no run was executing {GROUP_KILL_AFTER_SECONDS:.0f} s after the uploads"
    stack.kill_group("daemon", "worker")
    stack.start("worker")
    stack.start("daemon")
    done.restart = time.monotonic() - done.killed
    time.sleep(CHROMA_KILL_AFTER_SECONDS)
    stack.kill("chroma")
    stack.start("chroma")
    return done


def _api_fault(stack: Stack, client: Any) -> Fault:
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
        done = Fault(accepted, time.monotonic())
        stack.kill("api")
        stack.start("api")
        done.restart = time.monotonic() - done.killed
        thread.join(timeout=300)
        assert not thread.is_alive(), "the uploader did not finish within 300 s"
    finally:
        # A failure above must not leave the uploader running into the next part.
        stop.set()
        thread.join(timeout=300)
    assert not errors, errors
    return done


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


def noticed(stack: Stack, fault: Fault) -> dict[str, Any]:
    """How the runs a kill cut short ended: how long until the last was failed, and which of
    them no run retried."""
    with stack.instance() as instance:
        failed = failed_at(instance, fault.cut)
        retries = retries_of(instance, fault.cut)
    ends = [at for at in failed.values() if at is not None]
    return {
        "runs_cut_short": len(fault.cut),
        "runs_cut_short_not_failed": sorted(r for r, at in failed.items() if at is None),
        "runs_cut_short_not_retried": sorted(r for r, again in retries.items() if not again),
        "seconds_to_notice_dead_runs": round(max(ends) - fault.killed_at, 1) if ends else None,
    }


@pytest.mark.parametrize("fault", FAULTS)
def test_documents_recover_from_a_kill_without_manual_steps(
    stack: Stack, fault: str, reliability_report: dict[str, Any]
) -> None:
    with stack.client() as client:
        done = inject(stack, client, fault)
        ids = done.ids
        reports, _ = wait_terminal(
            client,
            ids,
            timeout=900 if FULL else 420,
            done=lambda d: d["status"] == "indexed",
            stall=QUIET_SECONDS,
        )
        recovered = time.monotonic() - done.killed
        state = audit(stack, client, Scope(frozenset(ids), part=fault))
    retries = retries_since(stack, time.time() - recovered)
    dead = noticed(stack, done)
    statuses = {i: reports[i]["status"] for i in ids}
    not_indexed = {i: s for i, s in statuses.items() if s != "indexed"}
    runs = sorted({r for d in reports.values() for r in d.get("run_ids", [])})
    figures = reliability_report.setdefault("faults", {})
    figures[fault] = {
        **ran_at(),
        "documents": len(ids),
        "documents_lost": len(not_indexed),
        "seconds_to_restart": round(done.restart, 1),
        "seconds_to_recover": round(recovered, 1),
        "runs_of_the_batch": len(runs),
        **retries,
        **dead,
        "healthy_after": healthy(stack),
        **state.to_dict(),
    }
    # What the kill cut short and what was retried, to tell a slow recovery from a lost run.
    assert not not_indexed, {"not_indexed": not_indexed, **retries, **dead}
    if fault in CUTS_RUNS:
        assert dead["runs_cut_short"] >= 1, "the kill cut no run short"
        assert not dead["runs_cut_short_not_failed"], "a killed run was never failed"
        assert not dead["runs_cut_short_not_retried"], "a killed run was not retried"
        assert dead["seconds_to_notice_dead_runs"] < NOTICE_LIMIT_SECONDS, dead
    if fault == "chroma":
        assert retries["run_retries"] + retries["step_retries"] >= 1, "nothing was retried"
    assert state.duplicates == 0, state.orphan_vectors[:10]
    assert not state.mismatched, state.mismatched
    assert state.chroma_count == state.catalog_chunks_live
    assert all(figures[fault]["healthy_after"].values())
