"""The warm execution model: runs execute on `rag-pipeline worker`, a dead worker is noticed
through its runs' heartbeats, and a cancel reaches the run without costing the warm process.

The kills (a worker's child, a whole worker, two workers on one broker and PostgreSQL) are in
tests/execution/test_scale_out.py and the reliability suite.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG
from support.env import BIN, REPO
from support.runs import materialize_args
from support.runs import wait_for as _wait

from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.storage.data_dir import DocumentStore
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

    # A run another launcher started has no task and no heartbeat: nothing to judge.
    other = create_run_for_test(warm_instance, status=DagsterRunStatus.STARTED)
    assert launcher.check_run_worker_health(other).status == WorkerStatus.UNKNOWN

    # A run `dagster asset materialize` orchestrates beats from the command's process: once
    # that process is gone, the run is failed too (and retried, on a worker).
    cli_run = create_run_for_test(
        warm_instance, status=DagsterRunStatus.STARTED, tags={heartbeat.WORKER_TAG: "host-b:77"}
    )
    heartbeat.beat(warm_instance, cli_run.run_id, time.time() - 1)
    assert launcher.check_run_worker_health(cli_run).status == WorkerStatus.RUNNING
    heartbeat.beat(warm_instance, cli_run.run_id, time.time() - launcher.lost_after_seconds - 1)
    assert launcher.check_run_worker_health(cli_run).status == WorkerStatus.FAILED
    assert warm_instance.get_run_by_id(cli_run.run_id).status == DagsterRunStatus.FAILURE


@pytest.mark.e2e
# One warm process: the next run can only go to the one that ran the canceled run, or to a new
# process that replaced it (a different pid), so the pids tell whether the cancel cost it.
@pytest.mark.parametrize("daemon_env", [{"RAG_WORKER_CONCURRENCY": "1"}], indirect=True)
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
        # The run's process yields the processor to the API: ten nice steps below this test's
        # (RAG_WORKER_NICE), and the daemon, on the upload's path, is not lowered.
        run_pid = int(worker.rsplit(":", 1)[1])
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, run_pid) == min(mine + 10, 19)
        assert os.getpriority(os.PRIO_PROCESS, daemon.pid) == mine
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
            lambda: next(
                (d for d in store.registry.reads.page()[0] if d.filename == "note.txt"), None
            ),
            60,
            "the note registered",
            tmp_path / "daemon.log",
        )
        _wait(
            lambda: store.registry.reads.get(note.id).status == DocumentStatus.indexed,
            120,
            "the note indexed",
            tmp_path / "worker.log",
        )
        [later] = instance.get_runs(RunsFilter(tags={"rag/document_ids": note.id}))
    # The whole host:pid: on one machine the host part is always equal.
    assert later.tags[heartbeat.WORKER_TAG] == worker
    book = next(d for d in store.registry.reads.page()[0] if d.filename == "book.pdf")
    assert book.status != DocumentStatus.indexed, "the canceled run did not finish the book"


@pytest.mark.e2e
def test_dagster_asset_materialize_hands_its_step_to_a_warm_worker(
    daemon, daemon_env, tmp_path: Path, monkeypatch
) -> None:
    """Entry point 4 on the warm model: the CLI orchestrates its run, a warm worker executes the
    step with the model it already holds, and the CLI never imports torch."""
    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance:
        _wait(
            lambda: heartbeat.worker_last_seen(instance),
            120,
            "a warm worker alive",
            tmp_path / "worker.log",
        )
    note = tmp_path / "heron.txt"
    note.write_text(
        "The grey heron stood in the shallow estuary at dawn, waiting for silver fish.\n"
        "Later the tide turned and the mudflats shone like hammered tin.\n"
    )

    def cli(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(BIN / "python"), "-X", "importtime", *args],
            env=daemon_env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    added = cli("-m", "rag_pipeline", "add", str(note))
    out, err = added.communicate(timeout=120)
    assert added.returncode == 0, err[-3000:]
    doc_id = out.strip()

    materialize = cli("-m", "dagster", *materialize_args(doc_id))
    out, err = materialize.communicate(timeout=300)
    assert materialize.returncode == 0, out[-3000:] + err[-3000:]
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in err.splitlines()
        if line.startswith("import time:")
    }
    assert "dagster" in imported  # the measurement works
    assert not imported & {"torch", "sentence_transformers"}, "the CLI loaded the model"

    status = subprocess.run(
        [str(BIN / "rag-pipeline"), "status", doc_id, "--json"],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    record = json.loads(status.stdout)
    assert record["status"] == "indexed", record
    hits = subprocess.run(
        [str(BIN / "rag-pipeline"), "search", "heron waiting in the estuary", "--k", "1"],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doc_id in hits.stdout, hits.stdout + hits.stderr

    with DagsterInstance.get() as instance:
        [run] = instance.get_runs(RunsFilter(tags={"dagster/partition": doc_id}))
        assert run.status == DagsterRunStatus.SUCCESS
        starts = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
        assert starts, "the run has a step"
        assert {entry.dagster_event.pid for entry in starts} != {materialize.pid}
        worker = run.tags[heartbeat.WORKER_TAG]
        assert not worker.endswith(f":{materialize.pid}"), "the step ran in the CLI"
        handed = [
            entry
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "in celery worker" in (entry.message or "")
        ]
        assert handed, "no warm worker reported executing the step"
