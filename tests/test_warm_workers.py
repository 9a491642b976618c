"""The warm execution model: runs execute on `rag-pipeline worker`, a dead worker is noticed
through its runs' heartbeats, and a cancel reaches the run without costing the warm process.

The kills (a worker's child, a whole worker, two workers on one broker and PostgreSQL) are in
tests/test_scale_out.py and the reliability suite.
"""

import shutil
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG
from support.runs import wait_for as _wait

from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.store import DocumentStore
from rag_pipeline.execution import heartbeat
from rag_pipeline.execution.launcher import WarmRunLauncher


@pytest.fixture()
def warm_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    from support.env import make_dagster_home

    home = tmp_path / "home"
    make_dagster_home(home, "sqlite")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    with DagsterInstance.get() as instance:
        yield instance


def test_a_run_whose_heartbeat_stopped_is_reported_failed(warm_instance) -> None:
    launcher = warm_instance.run_launcher
    assert isinstance(launcher, WarmRunLauncher)
    run = create_run_for_test(
        warm_instance,
        status=DagsterRunStatus.STARTED,
        tags={DAGSTER_CELERY_TASK_ID_TAG: "never-sent", heartbeat.WORKER_TAG: "host-a:4242"},
    )

    # Beating: running, whatever the result backend has (nothing, here).
    heartbeat.beat(warm_instance, run.run_id, time.time() - 5)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    # Silent for longer than the limit: the worker is gone, and the message says which.
    heartbeat.beat(warm_instance, run.run_id, time.time() - launcher.lost_after_seconds - 1)
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED
    assert "host-a:4242" in (health.msg or "")

    # A run another launcher started has no task: nothing to judge.
    other = create_run_for_test(warm_instance, status=DagsterRunStatus.STARTED)
    assert launcher.check_run_worker_health(other).status == WorkerStatus.UNKNOWN


@pytest.mark.e2e
def test_a_cancel_stops_the_run_and_the_warm_worker_takes_the_next(
    daemon, daemon_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    store = DocumentStore(daemon_env["RAG_DATA_DIR"])
    store.landing_dir.mkdir(parents=True, exist_ok=True)
    # The 400-page PDF, embedded by the real model, takes long enough to cancel mid-run.
    shutil.copyfile(
        corpus / "pdf/uns_pdf2image-memory-error-test-400p.pdf", store.landing_dir / "book.pdf"
    )

    with DagsterInstance.get() as instance:

        def started():  # type: ignore[no-untyped-def]
            runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
            return runs[0] if runs and heartbeat.WORKER_TAG in runs[0].tags else None

        run = _wait(started, 120, "a started run on a worker", tmp_path / "worker.log")
        worker = run.tags[heartbeat.WORKER_TAG]
        # What the UI's Terminate does.
        instance.run_coordinator.cancel_run(run.run_id)
        _wait(
            lambda: instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED,
            60,
            "the run canceled",
            tmp_path / "worker.log",
        )

        # The same warm process takes the next run: the cancel cost no process.
        (store.landing_dir / "note.txt").write_text("A short note after the cancel.\n")
        note = _wait(
            lambda: next((d for d in store.registry.page()[0] if d.filename == "note.txt"), None),
            60,
            "the note registered",
            tmp_path / "daemon.log",
        )
        _wait(
            lambda: store.registry.get(note.id).status == DocumentStatus.indexed,
            120,
            "the note indexed",
            tmp_path / "worker.log",
        )
        [later] = instance.get_runs(RunsFilter(tags={"rag/document_ids": note.id}))
    assert later.tags[heartbeat.WORKER_TAG].rsplit(":", 1)[0] == worker.rsplit(":", 1)[0]
    book = next(d for d in store.registry.page()[0] if d.filename == "book.pdf")
    assert book.status != DocumentStatus.indexed, "the canceled run did not finish the book"
