"""The landing-zone sensor: new files become partitions and batched range runs in one result.

The cursor holds the size and mtime of files seen but not yet taken, so a file still being
written is taken only once it stands still. Partitions keep insertion order, so the keys added
in one tick form contiguous ranges: each batch of up to RAG_MAX_DOCS_PER_RUN documents is one
range run. Run keys are derived from the batch, so a repeated tick never launches it twice.
"""

import hashlib
import json
from collections.abc import Sequence

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from rag_pipeline.assets import MAX_DOCS_PER_RUN, STAGES, ingest_job
from rag_pipeline.core import landing
from rag_pipeline.partitions import DOCUMENT_IDS_TAG, DOCUMENTS, release_deferred_partitions
from rag_pipeline.resources import DocumentStoreResource
from rag_pipeline.settings import get_settings

# Dagster's sensor daemon loops every 5 s; an interval below that lets every loop evaluate the
# sensor (at exactly 5 s, a loop that comes a moment early skips it and pickup takes 10 s).
SENSOR_INTERVAL_SECONDS = get_settings().sensor_interval_seconds


def batch_run_requests(
    keys: Sequence[str], batch_size: int, registered: dict[str, float]
) -> list[RunRequest]:
    """One range run per batch. The run key names the batch and when its documents were
    registered: a repeated tick asks for the same run, a document deleted and uploaded again
    gets a new one (the daemon never launches a run key twice)."""
    requests = []
    for start in range(0, len(keys), batch_size):
        batch = list(keys[start : start + batch_size])
        ident = "\n".join(f"{key}@{registered.get(key, 0.0)!r}" for key in batch)
        digest = hashlib.sha1(ident.encode(), usedforsecurity=False).hexdigest()
        requests.append(
            RunRequest(
                run_key=f"landing-{digest[:16]}",
                asset_selection=[AssetKey(stage) for stage in STAGES],
                tags={
                    "dagster/asset_partition_range_start": batch[0],
                    "dagster/asset_partition_range_end": batch[-1],
                    "rag/source": "landing_zone",
                    "rag/documents": str(len(batch)),
                    DOCUMENT_IDS_TAG: ",".join(batch),
                },
            )
        )
    return requests


def _load_cursor(
    raw: str | None,
) -> tuple[dict[str, landing.FileState], dict[str, landing.FileState]]:
    """(files seen but not yet taken, files taken and waiting for their run to move them)."""
    try:
        loaded = json.loads(raw or "{}")
        return tuple(  # type: ignore[return-value]
            {rel: landing.FileState(*state) for rel, state in loaded.get(part, {}).items()}
            for part in ("pending", "taken")
        )
    except (ValueError, TypeError, AttributeError):
        return {}, {}  # an unreadable cursor costs one extra look, never a lost file


def _dump_cursor(pending: dict[str, landing.FileState], taken: dict[str, landing.FileState]) -> str:
    return json.dumps(
        {
            "pending": {rel: [s.size, s.mtime_ns] for rel, s in pending.items()},
            "taken": {rel: [s.size, s.mtime_ns] for rel, s in taken.items()},
        },
        sort_keys=True,
    )


@sensor(
    name="landing_zone_sensor",
    description="Ingests every complete file dropped into $RAG_DATA_DIR/landing.",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    job=ingest_job,
)
def landing_zone_sensor(
    context: SensorEvaluationContext, documents: DocumentStoreResource
) -> SensorResult:
    store = documents.store
    pending, taken_before = _load_cursor(context.cursor)
    for key in release_deferred_partitions(context.instance, store):
        context.log.info(f"{key}: deleted earlier; its partition is removed now its runs are done")
    current = landing.scan(store.landing_dir)
    partition_set = set(context.instance.get_dynamic_partitions(DOCUMENTS))

    def is_document(key: str) -> bool:
        # A deleted document's partition can outlive it while a run names it; the same file
        # uploaded again is a new document, not a duplicate of the deleted one.
        return (key in partition_set and store.read_source(key) is not None) or key in new_keys

    # Files registered on an earlier tick stay in landing/ until raw_document moves them on;
    # while they are unchanged and their partition exists, there is nothing to look at.
    taken = {
        rel: state
        for rel, state in taken_before.items()
        if current.get(rel) == state and store.read_source_for_landing(rel) in partition_set
    }
    candidates = {rel: state for rel, state in current.items() if rel not in taken}

    new_keys: list[str] = []
    registered: dict[str, float] = {}
    counts: dict[str, int] = {}
    # In arrival order: a new version uploaded right after the file it replaces must be
    # registered after it, or it could not name the document it supersedes.
    arrived = sorted(landing.ready(candidates, pending), key=lambda rel: candidates[rel].mtime_ns)
    for relpath in arrived:
        outcome = landing.take(store, relpath, is_document)
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
        if outcome.action in ("new", "in_flight") and outcome.record is not None:
            taken[relpath] = candidates[relpath]
            if outcome.action == "new":
                new_keys.append(outcome.record.document_id)
                registered[outcome.record.document_id] = outcome.record.registered_at
        elif outcome.rejection is not None:
            rejection = outcome.rejection
            context.log.warning(f"rejected {relpath}: [{rejection.code}] {rejection.message}")
    pending = {
        rel: state
        for rel, state in candidates.items()
        if rel not in taken and (store.landing_dir / rel).exists()
    }

    cursor = _dump_cursor(pending, taken)
    if not new_keys:
        return SensorResult(skip_reason=_summary(counts) or "no new files", cursor=cursor)
    context.log.info(f"{len(new_keys)} new document(s): {_summary(counts)}")
    return SensorResult(
        run_requests=batch_run_requests(new_keys, MAX_DOCS_PER_RUN, registered),
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(DOCUMENTS, new_keys)],
        cursor=cursor,
    )


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
