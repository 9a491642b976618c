"""The ingestion job's executor: the run's step executes on a warm worker, wherever the run
itself is orchestrated.

A run that the daemon launched already executes inside a warm worker (the run launcher put it
there), and its step runs in that same process. A run that started elsewhere runs its step in a
warm worker too: `dagster asset materialize` orchestrates its run in the command's own process
(Dagster's CLI never goes through the run launcher), and without this the command would import
torch and load the model for every call. Here it hands the step to the workers through the
broker (dagster-celery's `execute_plan` task) and follows its events, so the command costs the
import of the code location and nothing more.

When no warm worker has been seen for a while (no `make run`, a notebook, a test's
`materialize`), the step runs in the orchestrating process, and the run says so.

A step handed to a worker that then dies is noticed: the worker beats the step's heartbeat, and
the orchestrator fails the step once it falls silent for `RAG_WORKER_LOST_AFTER_SECONDS`.
"""

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from dagster import DagsterEvent, DagsterInstance, executor
from dagster._core.events import EngineEventData
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import _submit_task

from rag_pipeline.execution import heartbeat
from rag_pipeline.execution.app import QUEUE, app_args, ensure_local_paths
from rag_pipeline.settings import get_settings

# A worker beats every heartbeat.INTERVAL_SECONDS; three missed beats and it is not there.
WORKER_SEEN_WITHIN_SECONDS = 15.0


class WorkerLost(RuntimeError):
    pass


class _WatchedResult:
    """A step task's result that also becomes ready, with an error, when the worker executing it
    (or every worker, before one took it) has gone silent."""

    def __init__(self, result: AsyncResult, instance: DagsterInstance, run_id: str) -> None:
        self._result = result
        self._instance = instance
        self._run_id = run_id
        self._lost_after = get_settings().worker_lost_after_seconds
        self._submitted = time.time()
        self._lost: str | None = None

    def ready(self) -> bool:
        if self._result.ready():
            return True
        self._lost = self._why_lost()
        return self._lost is not None

    def _why_lost(self) -> str | None:
        now = time.time()
        beat = heartbeat.last_beat(self._instance, self._run_id, heartbeat.STEP)
        if beat is not None and beat >= self._submitted - heartbeat.INTERVAL_SECONDS:
            if now - beat > self._lost_after:
                return (
                    f"the warm worker executing the step has not beaten its heartbeat for "
                    f"{now - beat:.0f} s (limit {self._lost_after:.0f} s): the worker is gone"
                )
            return None
        seen = heartbeat.worker_last_seen(self._instance)
        if now - self._submitted > self._lost_after and (
            seen is None or now - seen > self._lost_after
        ):
            return (
                f"no warm worker has taken the step in {now - self._submitted:.0f} s and none has "
                "been seen alive since: start one with `rag-pipeline worker`"
            )
        return None

    def get(self) -> Any:
        if self._lost is not None and not self._result.ready():
            raise WorkerLost(self._lost)
        return self._result.get(propagate=True)

    def revoke(self) -> None:
        # No broadcast on the SQLite broker; the step's cancel watch stops it all the same.
        with contextlib.suppress(Exception):
            self._result.revoke()


class WarmExecutor(Executor):
    def __init__(self, retries: RetryMode) -> None:
        self._retries = retries
        self._in_process = InProcessExecutor(retries=retries, marker_to_close=None)
        settings = get_settings()
        self.broker = settings.celery_broker_url
        self.backend = settings.celery_result_backend

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def app_args(self) -> dict[str, Any]:
        return {**app_args(self.broker, self.backend), "retries": self._retries}

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        why_here = self._why_in_process(plan_context)
        if why_here == "":  # a run the launcher put on a warm worker, which beats for it
            yield from self._in_process.execute(plan_context, execution_plan)
            return
        # Orchestrated here: this process beats the run's heartbeat, so that run monitoring
        # fails (and run retries relaunch) the run if this process dies.
        beat = heartbeat.Heartbeat(plan_context.instance, plan_context.run_id)
        beat.start()
        try:
            if why_here is not None:
                yield DagsterEvent.engine_event(
                    plan_context, f"Executing in this process: {why_here}.", EngineEventData()
                )
                yield from self._in_process.execute(plan_context, execution_plan)
            else:
                ensure_local_paths(self.broker, self.backend)
                yield from core_celery_execution_loop(  # type: ignore[no-untyped-call]
                    plan_context, execution_plan, step_execution_fn=self._submit
                )
        finally:
            beat.stop()

    @staticmethod
    def _submit(
        app: Celery,
        plan_context: PlanOrchestrationContext,
        step: Any,
        queue: str,
        priority: int,
        known_state: Any,
    ) -> _WatchedResult:
        result = _submit_task(  # type: ignore[no-untyped-call]
            app, plan_context, step, QUEUE, priority, known_state
        )
        return _WatchedResult(result, plan_context.instance, plan_context.run_id)

    @staticmethod
    def _why_in_process(plan_context: PlanOrchestrationContext) -> str | None:
        """None when the step should go to a warm worker; otherwise why not ("" when the run is
        already in one, which needs no word)."""
        if heartbeat.in_warm_worker():
            return ""
        instance = plan_context.instance
        if instance.is_ephemeral:
            return "the run's instance is ephemeral, so no worker can see it"
        try:
            plan_context.reconstructable_job.get_python_origin()
        except Exception:
            return "the job cannot be reconstructed by a worker"
        seen = heartbeat.worker_last_seen(instance)
        if seen is None or time.time() - seen > WORKER_SEEN_WITHIN_SECONDS:
            return (
                "no warm worker is alive (start the stack with `make run`, or `rag-pipeline "
                "worker`), so this process loads the model itself"
            )
        return None


@executor(name="warm", config_schema={"retries": get_retries_config()})  # type: ignore[no-untyped-call]
def warm_executor(init_context: Any) -> WarmExecutor:
    """Runs the step on a warm worker (see rag_pipeline.execution.executor); retries as the
    in-process executor's, enabled by default, so the step's retry policy applies."""
    retries = RetryMode.from_config(init_context.executor_config["retries"])
    return WarmExecutor(retries=retries or RetryMode.ENABLED)
