"""The warm run launcher's health check on a real instance: a run whose worker stopped beating
is failed so that run retries can see it.

Run retries (the daemon's event-log consumer) read a run when they see its failure event; a run
whose row still said STARTED at that moment was never retried. This pins the order the launcher
relies on: the row is failed before the event exists.
"""

import time
import uuid
from collections.abc import Iterator

import pytest
from dagster import DagsterEventType, DagsterRun, DagsterRunStatus
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import WILL_RETRY_TAG
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from rag_pipeline.execution import heartbeat
from rag_pipeline.settings import get_settings


@pytest.fixture()
def settings_from_env(rag_env: dict[str, str]) -> Iterator[None]:
    """The launcher reads the settings once per process: this test's, then the next test's."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _started_run(instance, last_beat: float) -> DagsterRun:  # type: ignore[no-untyped-def]
    run = instance.add_run(
        DagsterRun(
            job_name="ingest_job",
            run_id=str(uuid.uuid4()),
            status=DagsterRunStatus.STARTED,
            tags={DAGSTER_CELERY_TASK_ID_TAG: str(uuid.uuid4()), heartbeat.WORKER_TAG: "h:1"},
        )
    )
    heartbeat.beat(instance, run.run_id, last_beat)
    return run


def test_a_run_whose_heartbeat_stopped_is_failed_before_its_failure_event(
    instance, settings_from_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = instance.run_launcher
    run = _started_run(instance, time.time() - launcher.lost_after_seconds - 10)
    seen: list[DagsterRunStatus] = []
    store_event = instance.event_log_storage.store_event

    def recording(event):  # type: ignore[no-untyped-def]
        if event.dagster_event_type == DagsterEventType.RUN_FAILURE:
            seen.append(instance.get_run_by_id(event.run_id).status)
        store_event(event)

    monkeypatch.setattr(instance.event_log_storage, "store_event", recording)

    health = launcher.check_run_worker_health(run)

    assert health.status == WorkerStatus.FAILED
    assert "the worker is gone" in (health.msg or "")
    assert seen == [DagsterRunStatus.FAILURE], "the failure event was stored before the row"
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == DagsterRunStatus.FAILURE
    assert failed.tags[WILL_RETRY_TAG] == "true"
    # Monitoring, finding the run no longer STARTED, leaves it: one failure, not two.
    assert launcher.check_run_worker_health(failed).status == WorkerStatus.FAILED
    failures = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert len(failures) == 1


def test_a_run_still_beating_is_left_running(instance, settings_from_env: None) -> None:
    run = _started_run(instance, time.time())
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
