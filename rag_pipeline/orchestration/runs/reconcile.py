"""The status projection reconciled with the Dagster instance.

The ingestion step writes the projection where it logs each materialization or failure. What
the step cannot write, because its run died (a killed worker, a run that never started, a
cancel), `reconcile` finds in the instance: the sensor calls it on every tick, and cleanup as a
backstop. Reading status is core/documents/reports.py.
"""

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import DOCUMENTS, SWITCH_TAG, run_documents


def _retried(instance: DagsterInstance, run: Any) -> bool | None:
    """Whether a failed run is (or will be) retried; None while the daemon has not decided."""
    if run.status == DagsterRunStatus.CANCELED or not instance.run_retries_enabled:
        return False
    decided = run.tags.get(WILL_RETRY_TAG)
    if decided is None:
        child = instance.get_run_ids(filters=RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}))
        return True if child else None
    return bool(decided != "false")


def _why(run: Any) -> str:
    if run.status == DagsterRunStatus.CANCELED:
        return f"run {run.run_id[:8]} was canceled"
    reason = run.tags.get(RUN_FAILURE_REASON_TAG, "an error").lower().replace("_", " ")
    return f"run {run.run_id[:8]} stopped on {reason} and will not be retried"


def _finished(instance: DagsterInstance, registry: Any, keys: Sequence[str]) -> list[str]:
    """The runs these documents last had, where those runs are over: a document a run left
    part-way (only some stages selected) belongs to the next run that names it."""
    runs = {doc.run_id for doc in registry.reads.documents(keys) if doc.run_id}
    if not runs:
        return []
    records = instance.get_run_records(filters=RunsFilter(run_ids=list(runs)))
    return [r.dagster_run.run_id for r in records if r.dagster_run.is_finished]


_CURSOR = "reconciled_runs_until"
# A failed run the daemon has not decided to retry by now will not be (no daemon runs, or it is
# down; if it comes back and retries after all, the retry takes the documents on again).
_UNDECIDED_SECONDS = 300.0
# A run submitted this long ago whose partition never appeared was lost with its tick.
_LOST_SUBMISSION_SECONDS = 300.0


def reconcile(instance: DagsterInstance, store: DocumentStore) -> dict[str, list[str]]:
    """Bring the projection in line with runs that ended without the step saying so.

    - Documents a finished run left `processing` (its worker was killed, or it was canceled)
      fail with `run_failed` once no retry will take them on; a successful run's leftovers get
      their status from their stages.
    - Documents of a run that failed or was canceled before its step began fail the same way.
    - Documents submitted long ago whose partition never appeared are picked up again.
    Returns the ids it changed, by what happened to them.
    """
    registry = store.registry
    changed: dict[str, list[str]] = {"failed": [], "finished": [], "resubmitted": []}
    run_ids = registry.reads.processing_runs()
    records = instance.get_run_records(filters=RunsFilter(run_ids=run_ids)) if run_ids else []
    owned = registry.reads.by_run(
        [r.dagster_run.run_id for r in records if r.dagster_run.is_finished]
    )
    for record in records:
        run = record.dagster_run
        docs = owned.get(run.run_id, [])
        if not docs:
            continue
        if run.status == DagsterRunStatus.SUCCESS:
            registry.projection.finish(docs, run.run_id)
            changed["finished"] += docs
        elif _retried(instance, run) is False:
            created = record.create_timestamp.timestamp()
            changed["failed"] += registry.projection.run_stopped(
                docs, run.run_id, _why(run), created
            )

    stored = float(registry.get_state(_CURSOR) or 0.0)
    since = stored
    ended = RunsFilter(
        statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
        updated_after=datetime.fromtimestamp(since, UTC),
    )
    undecided: list[float] = []
    partition_order = cache(lambda: list(instance.get_dynamic_partitions(DOCUMENTS)))
    for record in instance.get_run_records(filters=ended, limit=1000, ascending=True):
        run = record.dagster_run
        updated = record.update_timestamp.timestamp()
        retried = _retried(instance, run)
        if retried is None and time.time() - updated < _UNDECIDED_SECONDS:
            undecided.append(updated - 0.001)
            continue
        since = max(since, updated)
        # A model switch's run leaves status alone: its failures are the switch's.
        if retried or SWITCH_TAG in run.tags:
            continue
        keys = run_documents(run.tags, partition_order)
        created = record.create_timestamp.timestamp()
        changed["failed"] += registry.projection.run_stopped(
            keys, run.run_id, _why(run), created, _finished(instance, registry, keys)
        )
    cursor = min([since, *undecided])
    if cursor != stored:  # the sensor calls this every tick: write only when it moved
        registry.set_state(_CURSOR, json.dumps(cursor))

    now = time.time()
    # Looked at once, in a window after their submission: a bulk load's thousands of documents
    # queued behind their runs are not checked on every tick for as long as they wait.
    suspects = registry.reads.submitted_between(
        now - 2 * _LOST_SUBMISSION_SECONDS, now - _LOST_SUBMISSION_SECONDS
    )
    lost = []
    if suspects:
        partitions = set(instance.get_dynamic_partitions(DOCUMENTS))
        lost = [key for key in suspects if key not in partitions]
    if lost:
        registry.lifecycle.unclaim(lost)
        changed["resubmitted"] = lost
    return changed
