"""The run launcher of the warm execution model: dagster-celery's `CeleryRunLauncher`, whose
broker and result backend default to the service's settings, with a health check that notices a
dead worker (and fails its run so that run retries see it) and a cancel that reaches the run's
own process.

In `dagster.yaml`:

    run_launcher:
      module: rag_pipeline.execution.launcher
      class: WarmRunLauncher
"""

import time
from collections.abc import Mapping
from typing import Any, Self

from dagster import DagsterRun, DagsterRunStatus, Field, Noneable, Permissive, StringSource
from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes import ConfigurableClassData
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from rag_pipeline.execution import heartbeat
from rag_pipeline.execution.app import QUEUE, app_args, ensure_local_paths
from rag_pipeline.settings import get_settings


class WarmRunLauncher(CeleryRunLauncher):
    def __init__(
        self,
        broker: str | None = None,
        backend: str | None = None,
        default_queue: str = QUEUE,
        include: list[str] | None = None,
        config_source: dict[str, Any] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        settings = get_settings()
        self.lost_after_seconds = settings.worker_lost_after_seconds
        broker = broker or settings.celery_broker_url
        backend = backend or settings.celery_result_backend
        ensure_local_paths(broker, backend)
        super().__init__(
            default_queue=default_queue,
            broker=broker,
            backend=backend,
            include=include,
            config_source={**app_args(broker, backend)["config_source"], **(config_source or {})},
            inst_data=inst_data,
        )

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "broker": Field(
                Noneable(StringSource),
                is_required=False,
                description="Celery broker URL; default: RAG_BROKER_URL, else SQLite.",
            ),
            "backend": Field(
                Noneable(StringSource),
                is_required=False,
                description="Celery result backend URL; default: RAG_RESULT_BACKEND, else SQLite.",
            ),
            "config_source": Field(
                Noneable(Permissive()),  # type: ignore[no-untyped-call]
                is_required=False,
                description="More Celery settings.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, **config_value)

    def terminate(self, run_id: str) -> bool:
        """Marks the run CANCELING; the run's ingest step sees it at its next document (or slice
        of embeddings) and stops, and Dagster records the run CANCELED. (Celery's revoke needs a
        broadcast channel the SQLite broker lacks, and would kill the warm process with it.)"""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if run.status != DagsterRunStatus.CANCELING:
            self._instance.report_run_canceling(run)
        if (
            run.status == DagsterRunStatus.STARTING
            and heartbeat.last_beat(self._instance, run_id) is None
        ):
            # Not yet taken by a worker: the worker skips a run that is no longer STARTING.
            self._instance.report_run_canceled(run, "Canceled before a worker took it.")
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        health = self._worker_health(run)
        if health.status == WorkerStatus.FAILED:
            self._fail(
                run, f"Detected run worker status {health}. Marking run {run.run_id} as failed."
            )
        return health

    def _worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if DAGSTER_CELERY_TASK_ID_TAG in run.tags:
            task = super().check_run_worker_health(run)
            if task.status in (WorkerStatus.FAILED, WorkerStatus.SUCCESS):
                return task
        else:
            # Orchestrated outside the launcher (`dagster asset materialize`): its process beats
            # the run's heartbeat while the step runs on a warm worker (executor.py).
            task = CheckRunHealthResult(WorkerStatus.UNKNOWN, "not launched on a warm worker")
        last = heartbeat.last_beat(self._instance, run.run_id)
        if last is None:
            return task
        silent = time.time() - last
        if silent > self.lost_after_seconds:
            worker = run.tags.get(heartbeat.WORKER_TAG, "its worker")
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"{worker} has not beaten the run's heartbeat for {silent:.0f} s "
                f"(limit {self.lost_after_seconds:.0f} s): the worker is gone",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)

    def get_run_worker_debug_info(
        self, run: DagsterRun, include_container_logs: bool | None = True
    ) -> str | None:
        """What monitoring logs about a failed run's worker: the Celery task's, or for a run
        orchestrated outside the launcher (no task), its worker tag and last heartbeat (the
        parent class fails on the missing tag)."""
        if DAGSTER_CELERY_TASK_ID_TAG in run.tags:
            return super().get_run_worker_debug_info(run, include_container_logs)
        last = heartbeat.last_beat(self._instance, run.run_id)
        return str(
            {
                "run_id": run.run_id,
                "worker": run.tags.get(heartbeat.WORKER_TAG),
                "last_heartbeat": last,
            }
        )

    def _fail(self, run: DagsterRun, message: str) -> None:
        """Fails a run whose worker is gone, the run's row before its failure event.

        Run monitoring would fail it too, but through `report_run_failed`, which stores the
        event first and updates the row after. Run retries (the daemon's event-log consumer,
        whose 5 s loop lines up with monitoring's) read the row when they see the event: a run
        still STARTED then is never retried, and its documents wait for good. Failed here,
        monitoring finds the status changed and leaves it."""
        current = self._instance.get_run_by_id(run.run_id)
        if current is None or current.status != DagsterRunStatus.STARTED:
            return
        failure = JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION)
        event = DagsterEvent(
            event_type_value=DagsterEventType.RUN_FAILURE.value,
            job_name=run.job_name,
            message=message,
            event_specific_data=failure,
        )
        self._instance.run_storage.handle_run_event(run.run_id, event)
        self._instance.report_run_failed(current, message, job_failure_data=failure)
