"""Runs asked for from the API and the CLI, and what a run reports.

The daemon starts runs from its own code location. The API and the CLI have none, so a
`RunSubmitter` loads the code location in-process, once, and creates and submits runs as the
daemon's sensors do: the run is created from the job's snapshot, then submitted to the
instance's run coordinator (the queued coordinator in `dagster.yaml`), whose daemon starts it
on the warm workers. Creating and submitting are separate steps, so a caller can record the run
(the documents it takes on) before anything can start it.

This is the one module that reaches into Dagster's private workspace APIs;
tests/orchestration/test_runs.py
pins what it relies on.
"""

import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

from rag_pipeline.core.registry import Document
from rag_pipeline.settings import get_settings

# The code location's name in workspace.yaml and scripts/run-stack.sh: the daemon finds a run's
# job by it, so runs created here start and retry like the daemon's own.
LOCATION = "rag_pipeline"
MODULE = "rag_pipeline.definitions"
REPOSITORY = "__repository__"


class RunSubmitter:
    """Creates and submits runs of the project's jobs, from a code location loaded in this
    process on first use (about 3 s); safe to share between threads."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self._lock = threading.Lock()
        self._workspace: WorkspaceProcessContext | None = None

    def _location(self) -> CodeLocation:
        with self._lock:
            if self._workspace is None:
                origin = InProcessCodeLocationOrigin(
                    LoadableTargetOrigin(
                        executable_path=sys.executable,
                        module_name=MODULE,
                        working_directory=os.getcwd(),
                    ),
                    location_name=LOCATION,
                )
                self._workspace = WorkspaceProcessContext(
                    self.instance, InProcessWorkspaceLoadTarget(origin)
                )
            return self._workspace.create_request_context().get_code_location(LOCATION)

    def create(
        self,
        job_name: str,
        tags: Mapping[str, str],
        asset_selection: Iterable[AssetKey] | None = None,
    ) -> str:
        """A run of the job, created but not submitted: nothing starts it until `submit`."""
        location = self._location()
        selection = frozenset(asset_selection) if asset_selection is not None else None
        remote_job = location.get_job(
            JobSubsetSelector(
                location_name=LOCATION,
                repository_name=REPOSITORY,
                job_name=job_name,
                op_selection=None,
                asset_selection=selection,
            )
        )
        plan = location.get_execution_plan(
            remote_job, {}, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config={},
            resolved_op_selection=remote_job.resolved_op_selection,
            step_keys_to_execute=None,
            status=DagsterRunStatus.NOT_STARTED,
            op_selection=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**(remote_job.run_tags or {}), **tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=selection,
            asset_check_selection=None,
            asset_graph=location.get_repository(REPOSITORY).asset_graph,
        )
        return run.run_id

    def submit(self, run_id: str) -> None:
        """Hand a created run to the run coordinator (queued: the daemon starts it)."""
        self._location()
        assert self._workspace is not None
        self.instance.submit_run(run_id, self._workspace.create_request_context())

    def discard(self, run_id: str) -> None:
        """Forget a run that was created but will not be submitted."""
        run = self.instance.get_run_by_id(run_id)
        if run is not None and run.status == DagsterRunStatus.NOT_STARTED:
            self.instance.delete_run(run_id)

    def launch(self, job_name: str, tags: Mapping[str, str]) -> str:
        run_id = self.create(job_name, tags)
        self.submit(run_id)
        return run_id

    def set_running(self, sensor_name: str, running: bool) -> None:
        """Start or stop a sensor, as the UI's switch does (the instance keeps its state)."""
        sensor = self._location().get_repository(REPOSITORY).get_sensor(sensor_name)
        if running:
            self.instance.start_sensor(sensor)
        else:
            self.instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)

    def close(self) -> None:
        with self._lock:
            if self._workspace is not None:
                self._workspace.__exit__(None, None, None)
                self._workspace = None


class DocumentRuns:
    """The documents service's `Runs`: ingest runs over documents picked one by one, from a
    stage on, named in their tags (rag_pipeline/orchestration/partitions.py: `rerun_tags`)."""

    def __init__(self, submitter: RunSubmitter) -> None:
        self.submitter = submitter

    def create(self, docs: Sequence[Document], first_stage: str, source: str) -> str:
        from rag_pipeline.orchestration.assets import STAGES
        from rag_pipeline.orchestration.partitions import DOCUMENTS, rerun_tags
        from rag_pipeline.orchestration.sensors import batch_tags

        instance = self.submitter.instance
        keys = [doc.id for doc in docs]
        # A document whose partition was lost gets it back (the sensor's reconcile resubmits
        # only documents that never ran).
        missing = [key for key in keys if not instance.has_dynamic_partition(DOCUMENTS, key)]
        if missing:
            instance.add_dynamic_partitions(DOCUMENTS, missing)
        large = int(get_settings().large_document_mb * 1024 * 1024)
        tags = {**rerun_tags(instance, keys), **batch_tags(docs, source, large)}
        stages = STAGES[STAGES.index(first_stage) :]
        return self.submitter.create("ingest_job", tags, [AssetKey(stage) for stage in stages])

    def submit(self, run_id: str) -> None:
        self.submitter.submit(run_id)

    def discard(self, run_id: str) -> None:
        self.submitter.discard(run_id)


class RunStatus(StrEnum):
    queued = "queued"
    starting = "starting"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceling = "canceling"
    canceled = "canceled"


_STATUS = {
    DagsterRunStatus.NOT_STARTED: RunStatus.queued,
    DagsterRunStatus.QUEUED: RunStatus.queued,
    DagsterRunStatus.STARTING: RunStatus.starting,
    DagsterRunStatus.STARTED: RunStatus.running,
    DagsterRunStatus.MANAGED: RunStatus.running,
    DagsterRunStatus.SUCCESS: RunStatus.succeeded,
    DagsterRunStatus.FAILURE: RunStatus.failed,
    DagsterRunStatus.CANCELING: RunStatus.canceling,
    DagsterRunStatus.CANCELED: RunStatus.canceled,
}


@dataclass
class RunReport:
    id: str
    job: str
    status: RunStatus
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None
    # The job's own result: what its steps reported (a backup's archive and size, cleanup's
    # counts, the documents an ingest run could not process).
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _plain(value: Any) -> Any:
    """A metadata value as JSON can carry it."""
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def run_report(instance: DagsterInstance, run_id: str) -> RunReport | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    run = record.dagster_run
    metadata: dict[str, Any] = {}
    errors: list[str] = []
    events = instance.get_records_for_run(
        run_id,
        of_type={
            DagsterEventType.STEP_OUTPUT,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.RUN_FAILURE,
        },
        limit=100,
    ).records
    for event in events:
        dagster_event = event.event_log_entry.dagster_event
        if dagster_event is None:
            continue
        data = dagster_event.event_specific_data
        if dagster_event.event_type == DagsterEventType.STEP_OUTPUT:
            entries = getattr(data, "metadata", None) or {}
        elif dagster_event.event_type == DagsterEventType.STEP_FAILURE:
            user = getattr(data, "user_failure_data", None)
            entries = (user.metadata if user is not None else None) or {}
            error = getattr(data, "error", None)
            message = user.description if user is not None else None
            errors.append(message or (error.message.strip() if error is not None else ""))
        else:
            entries = {}
            errors.append(dagster_event.message or "")
        metadata.update({name: _plain(value.value) for name, value in entries.items()})
    status = _STATUS.get(run.status, RunStatus.running)
    error = next((e for e in errors if e), None) if status == RunStatus.failed else None
    if status == RunStatus.canceled:
        error = "the run was canceled"
    return RunReport(
        id=run.run_id,
        job=run.job_name,
        status=status,
        created_at=_iso(record.create_timestamp.timestamp()),
        started_at=_iso(record.start_time),
        ended_at=_iso(record.end_time),
        error=error,
        metadata=metadata,
        tags={k: v for k, v in run.tags.items() if not k.startswith(".dagster")},
    )
