"""Operations from the API against the real daemon and warm worker: a schedule's job run
now, schedules changed and stopped, a document reprocessed, failed documents retried.

The API runs in the test process (TestClient) on the daemon's DAGSTER_HOME and data dir; the
daemon's queue starts what it asks for on the warm worker.
"""

import os
import random
import signal
import tarfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import RunsFilter
from fastapi.testclient import TestClient
from support.env import BIN, REPO
from support.runs import wait_for

from bench.harness.processes import process_group
from rag_pipeline.orchestration import schedules
from rag_pipeline.orchestration.schedules import SCHEDULED_FOR_TAG, Cursor

pytestmark = pytest.mark.e2e

NORWICH = "text/uns_norwich-city.txt"
QUERY = "Norwich City Football Club"
RETRIED = [
    "markdown/haystack_sample.md",
    "markdown/uns_codeblock.md",
    "text/chardet_windows-1252_dutch.txt",
    "markdown/plumber_README.md",
]


@pytest.fixture()
def daemon_env(daemon_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # Backups land in the test's folder, not the checkout the daemon starts in.
    return {**daemon_env, "RAG_BACKUP_DIR": str(tmp_path / "backups")}


@pytest.fixture()
def api(daemon, daemon_env, monkeypatch) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    from rag_api.main import create_app
    from rag_pipeline.settings import Settings

    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance, TestClient(create_app(Settings(), instance)) as c:
        yield c


def wait_run(client: TestClient, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = client.get(f"/runs/{run_id}").json()
        if report["status"] in ("succeeded", "failed", "canceled"):
            return report
        time.sleep(0.5)
    pytest.fail(f"run {run_id} not finished after {timeout} s: {report}")


def test_running_the_backup_schedule_writes_a_real_archive(api, daemon_env) -> None:
    started = api.post("/schedules/backup_schedule/run")
    assert started.status_code == 202, started.text
    report = wait_run(api, started.json()["run_id"])

    assert report["status"] == "succeeded", report
    archive = Path(report["metadata"]["path"])
    assert archive.parent == Path(daemon_env["RAG_BACKUP_DIR"])
    assert archive.stat().st_size == report["metadata"]["bytes"] > 0
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    assert report["started_at"] and report["ended_at"] >= report["started_at"]


def _ticks(instance: Any, name: str, after: float) -> list[Any]:
    """The sensor's ticks that began after `after`, oldest first."""
    states = [s for s in instance.all_instigator_state() if s.name == name]
    if not states:
        return []
    ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, limit=100)
    return sorted((t for t in ticks if t.timestamp > after), key=lambda t: t.timestamp)


def _first_tick_following(instance: Any, cron: str, after: float, log: Path) -> Any:
    """The first evaluation of cleanup_schedule that began after `after` and used `cron`."""

    def found() -> Any:
        for tick in _ticks(instance, "cleanup_schedule", after):
            cursor = Cursor.load(tick.cursor)
            if tick.end_timestamp and cursor is not None and cursor.cron == cron:
                return tick
        return None

    return wait_for(found, 30, f"a tick following {cron!r}", log, interval=0.1)


@pytest.mark.parametrize("daemon_env", [{"RAG_EMBEDDING_MODEL": "hash-384"}], indirect=True)
def test_a_cron_change_moves_the_next_tick_at_once_and_a_stop_stops_the_ticks(
    api, daemon, daemon_env, tmp_path: Path
) -> None:
    instance = api.app.state.instance
    log = tmp_path / "daemon.log"
    wait_for(lambda: _ticks(instance, "cleanup_schedule", 0), 120, "the daemon's first tick", log)

    # Changes at random moments of the daemon's 5 s loop, as a user's come. "At once": the
    # daemon's first evaluation that begins after the API's answer already follows the new
    # cron. (How long that takes is the benchmarks' to measure, not asserted here.)
    rng = random.Random(16)
    for cron in ["*/7 * * * *", "5 4 * * *", "*/2 * * * 1-5", "* * * * *"]:
        time.sleep(rng.uniform(0, 5))
        changed = api.patch("/schedules/cleanup_schedule", json={"cron": cron})
        answered = time.time()
        assert changed.status_code == 200, changed.text
        first = wait_for(
            lambda after=answered: _ticks(instance, "cleanup_schedule", after),
            30,
            "an evaluation after the change",
            log,
            interval=0.1,
        )[0]
        tick = _first_tick_following(instance, cron, answered - 5, log)
        assert tick.timestamp <= first.timestamp, "an evaluation after the change used the old cron"
        cursor = Cursor.load(tick.cursor)
        expected = schedules.next_tick(
            schedules.CronSchedule("cleanup_schedule", cron, "UTC"), tick.timestamp
        )
        assert cursor is not None and cursor.next == expected.isoformat()

    # The new cron fires: cleanup_job runs for the next minute's tick.
    due = datetime.fromisoformat(changed.json()["next_tick_at"])
    run = wait_for(
        lambda: instance.get_runs(
            filters=RunsFilter(
                tags={
                    schedules.SCHEDULE_TAG: "cleanup_schedule",
                    SCHEDULED_FOR_TAG: due.isoformat(),
                }
            )
        ),
        90,
        "the scheduled run",
        log,
    )[0]
    created = instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()
    # For that tick, after it and before the next one (a missed tick would show up a minute
    # late, for the next); how soon after is the benchmarks' to measure.
    assert 0 <= created - due.timestamp() < 60, created - due.timestamp()
    assert wait_run(api, run.run_id)["status"] == "succeeded"

    # The change survives a restart of the daemon: the new one follows the same cron.
    os.killpg(daemon.pid, signal.SIGTERM)
    daemon.wait(timeout=60)
    restarted = time.time()
    command = [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
    with process_group(command, daemon_env, tmp_path / "daemon-2.log"):
        _first_tick_following(instance, "* * * * *", restarted, tmp_path / "daemon-2.log")

        stopped = api.patch("/schedules/cleanup_schedule", json={"running": False})
        assert stopped.json()["status"] == "stopped"
        stopped_at = time.time()
        # An evaluation under way when it stopped may still finish; none begins after, while
        # the other schedule is evaluated on, loop after loop.
        wait_for(
            lambda: len(_ticks(instance, "backup_schedule", stopped_at + 1)) >= 2,
            60,
            "two evaluations of the other schedule",
            tmp_path / "daemon-2.log",
        )
        assert not _ticks(instance, "cleanup_schedule", stopped_at + 1)


def _document(client: TestClient, doc_id: str) -> dict[str, Any]:
    response = client.get(f"/documents/{doc_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_reprocess_with_a_new_chunk_size_changes_the_chunk_count_while_search_answers(
    api, corpus: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    posted = api.post("/documents", files=[("file", (corpus / NORWICH).open("rb"))])
    doc_id = posted.json()["documents"][0]["id"]
    before = wait_for(
        lambda: (d := _document(api, doc_id))["status"] == "indexed" and d, 300, "indexed", log
    )

    asked = api.post(f"/documents/{doc_id}/reprocess", json={"chunk_size": 64})
    assert asked.status_code == 202, asked.text
    run_id = asked.json()["run_id"]
    # Search asked every quarter second until the document is indexed again by that run (the
    # deadline is only when to give up): it must find the document each time, including while
    # the run is processing it.
    answers: list[tuple[str, list[str]]] = []
    deadline = time.monotonic() + 300
    while (now := _document(api, doc_id))["status"] != "indexed" or run_id not in now["run_ids"]:
        assert now["status"] in ("queued", "processing"), now
        assert time.monotonic() < deadline, f"not indexed again: {now}"
        found = api.get("/search", params={"q": QUERY, "k": 3})
        assert found.status_code == 200, found.text
        answers.append((now["status"], [h["document_id"] for h in found.json()["results"]]))
        time.sleep(0.25)
    assert "processing" in {status for status, _ in answers}, answers
    assert all(doc_id in hits for _, hits in answers), answers

    assert now["chunks"] > before["chunks"]
    assert now["stages"]["document_chunks"]["metadata"]["chunk_size"] == 64
    assert wait_run(api, run_id)["status"] == "succeeded"
    hits = api.get("/search", params={"q": QUERY, "k": 1}).json()["results"]
    assert hits[0]["document_id"] == doc_id


@pytest.mark.parametrize("daemon_env", [{"RAG_EMBEDDING_MODEL": "hash-384"}], indirect=True)
def test_a_bulk_retry_launches_one_run_per_batch(
    api, daemon_env, corpus: Path, tmp_path: Path
) -> None:
    from rag_pipeline.core.storage.data_dir import DocumentStore

    log = tmp_path / "worker.log"
    files = [NORWICH, *RETRIED, "pdf_problem/uns_password.pdf"]
    ids = [
        api.post("/documents", files=[("file", (corpus / rel).open("rb"))]).json()["documents"][0][
            "id"
        ]
        for rel in files
    ]
    wait_for(
        lambda: all(_document(api, i)["status"] in ("indexed", "failed") for i in ids),
        300,
        "ingested",
        log,
    )
    *good, locked = ids
    # What the reconciler records when a run's worker is lost for good.
    registry = DocumentStore(daemon_env["RAG_DATA_DIR"]).registry
    for doc_id in good:
        registry.projection.stage_failed(
            doc_id, "chunk_embeddings", "lost", "run_failed", "worker lost"
        )

    asked = api.post("/documents/retry", json={})
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert sorted(body["documents"]) == sorted(good) and body["skipped_permanent"] == 1
    # Five documents, at most four per run (RAG_MAX_DOCS_PER_RUN): two runs, not five.
    assert len(body["runs"]) == 2
    for run in body["runs"]:
        assert wait_run(api, run["run_id"])["status"] == "succeeded"
    assert all(_document(api, i)["status"] == "indexed" for i in good)
    assert _document(api, locked)["status"] == "failed"
