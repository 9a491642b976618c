"""What the ingestion step knows of its own run: its documents, a cancel, how many run at once."""

import time

from dagster import (
    AssetExecutionContext,
    DagsterInvalidInvocationError,
    DagsterRunStatus,
    Failure,
    RunsFilter,
)

from rag_pipeline.orchestration.partitions import DOCUMENTS, named_documents


class CancelWatch:
    """A cancel (the UI's Terminate, `dagster run terminate`) marks the run CANCELING. The step
    looks between documents and between slices of embeddings, at most once a second, and stops
    without a retry; Dagster then records the run CANCELED, and a warm worker process goes on
    to its next run. (Dagster turns an interrupt inside a step with a retry policy into a
    retry, so a signal would not stop it.)"""

    INTERVAL_SECONDS = 1.0

    def __init__(self, context: AssetExecutionContext) -> None:
        self._context = context
        self._next = 0.0

    def check(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.INTERVAL_SECONDS
        run = self._context.instance.get_run_by_id(self._context.run_id)
        if run is not None and run.status in (
            DagsterRunStatus.CANCELING,
            DagsterRunStatus.CANCELED,
        ):
            raise Failure(description="The run was canceled.", allow_retries=False)


def run_documents(context: AssetExecutionContext) -> list[str]:
    """The run's documents, even if one at either end of its range is gone.

    Dagster resolves a range by the positions of its ends among the partitions, so deleting the
    document at an end before the run starts makes the whole range invalid. Runs the sensor
    launches name their documents; the ones still there run, the deleted one needs nothing.
    Runs over documents picked one by one (a retry) run only those, not the ones between.
    """
    try:
        keys = list(context.partition_keys)
        named = named_documents(context.run.tags)
        if named is None or len(named) == len(keys):
            return keys
        # Documents picked one by one (a retry): the range's ends and the ones named between.
        picked = set(named)
        return [key for key in keys if key in picked]
    except DagsterInvalidInvocationError as exc:
        named = named_documents(context.run.tags)
        if not named:
            raise Failure(
                f"{exc} A document at an end of this range was deleted before the run started;"
                " materialize the documents that are still there again."
            ) from exc
    existing = set(context.instance.get_dynamic_partitions(DOCUMENTS))
    keys = [key for key in named if key in existing]
    gone = [key for key in named if key not in existing]
    if gone:
        context.log.warning(
            f"{', '.join(gone)}: deleted before this run started; running the other {len(keys)}"
        )
    return keys


def active_runs(context: AssetExecutionContext) -> int:
    started = RunsFilter(statuses=[DagsterRunStatus.STARTED])
    return max(1, int(context.instance.get_runs_count(filters=started)))
