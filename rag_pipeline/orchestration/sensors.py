"""The landing-zone sensor: new files and uploads become partitions and batched range runs in
one result.

The cursor holds the size and mtime of files seen but not yet taken, so a file still being
written is taken only once it stands still. Partitions keep insertion order, so the keys added
in one tick form contiguous ranges: a batch is one range run. Batches follow the work: a run
takes waiting documents until their files reach RAG_RUN_BUDGET_MB (or RAG_MAX_DOCS_PER_RUN of
them), so many short notes share a few runs while a large book runs alone, in the large lane;
and when fewer runs would start than run slots are free, the work is cut so every free slot
gets a share (never under RAG_RUN_SHARE_MIN_KB), so no warm process idles while one holds it all.
Run keys are derived from the batch, so a repeated tick never launches it twice.
"""

import hashlib
import json
import time
from collections.abc import Callable, Sequence

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.batching import batches, spread
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import Document
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.sources.sync import SourceBusy
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.assets import MAX_DOCS_PER_RUN, STAGES, ingest_job
from rag_pipeline.orchestration.partitions import DOCUMENTS, range_tags, release_deferred_partitions
from rag_pipeline.orchestration.resources import DocumentStoreResource, VectorIndexResource
from rag_pipeline.orchestration.runs.reconcile import reconcile
from rag_pipeline.orchestration.runs.run_slots import run_slots
from rag_pipeline.orchestration.sources import opener, source_sync
from rag_pipeline.settings import get_settings

# Dagster's sensor daemon loops every 5 s; an interval below that lets every loop evaluate the
# sensor (at exactly 5 s, a loop that comes a moment early skips it and pickup takes 10 s).
SENSOR_INTERVAL_SECONDS = get_settings().sensor_interval_seconds
WEB_SYNC_SECONDS = 25.0


LANE_TAG = "rag/lane"
# Every run the sensor asks for holds the documents of one collection, named here.
COLLECTION_TAG = "rag/collection"


def by_collection(docs: Sequence[Document]) -> list[Document]:
    """The documents grouped by collection, collections in order of their first document and
    documents in arrival order: added as partitions in this order, each collection's batch is
    a contiguous range."""
    order: dict[str, list[Document]] = {}
    for doc in docs:
        order.setdefault(doc.collection, []).append(doc)
    return [doc for group in order.values() for doc in group]


def batch_run_requests(
    docs: Sequence[Document], large_bytes: int | None = None, free_slots: int = 0
) -> list[RunRequest]:
    """One range run per batch (see `batches`) of one collection, the documents in the order
    of `by_collection`; with fewer batches than `free_slots`, they are cut so that each free
    slot gets a share (see `spread`). The run key names the batch and when its documents were
    registered: a repeated tick asks for the same run, a document deleted and uploaded again
    gets a new one (the daemon never launches a run key twice)."""
    settings = get_settings()
    budget = settings.run_budget_bytes
    large = int(settings.large_document_mb * 1024 * 1024) if large_bytes is None else large_bytes
    requests = []
    grouped: dict[str, list[Document]] = {}
    for doc in by_collection(docs):
        grouped.setdefault(doc.collection, []).append(doc)
    budgeted = [b for group in grouped.values() for b in batches(group, budget, MAX_DOCS_PER_RUN)]
    for batch in spread(budgeted, free_slots, settings.run_share_min_bytes):
        keys = [doc.id for doc in batch]
        ident = "\n".join(f"{doc.id}@{doc.registered_at!r}" for doc in batch)
        digest = hashlib.sha1(ident.encode(), usedforsecurity=False).hexdigest()
        requests.append(
            RunRequest(
                run_key=f"landing-{digest[:16]}",
                asset_selection=[AssetKey(stage) for stage in STAGES],
                tags={**range_tags(keys), **batch_tags(batch, "landing_zone", large)},
            )
        )
    return requests


def batch_tags(batch: Sequence[Document], source: str, large_bytes: int) -> dict[str, str]:
    """What started a batch's run, its size, and its lane: a run holding a document of
    `large_bytes` or more goes in the large lane."""
    largest = max(doc.bytes or 0 for doc in batch)
    collections = {doc.collection for doc in batch}
    return {
        "rag/source": source,
        # One collection per batch wherever batches are made (sensor, retry, reprocess).
        COLLECTION_TAG: ",".join(sorted(collections)),
        "rag/documents": str(len(batch)),
        "rag/bytes": str(sum(doc.bytes or 0 for doc in batch)),
        LANE_TAG: "large" if largest >= large_bytes else "small",
    }


Files = dict[str, landing.FileState]


def _load_cursor(raw: str | None) -> tuple[Files, Files, float]:
    """(files seen but not yet taken, files taken and waiting for their run to move them,
    when the last applied tick claimed documents)."""
    try:
        loaded = json.loads(raw or "{}")
        pending, taken = (
            {rel: landing.FileState(*state) for rel, state in loaded.get(part, {}).items()}
            for part in ("pending", "taken")
        )
        return pending, taken, float(loaded.get("claimed_at", 0.0))
    except (ValueError, TypeError, AttributeError):
        return {}, {}, 0.0  # an unreadable cursor costs one extra look, never a lost file


def _dump_cursor(pending: Files, taken: Files, claimed_at: float) -> str:
    return json.dumps(
        {
            "pending": {rel: [s.size, s.mtime_ns] for rel, s in pending.items()},
            "taken": {rel: [s.size, s.mtime_ns] for rel, s in taken.items()},
            "claimed_at": claimed_at,
        },
        sort_keys=True,
    )


@sensor(
    name="landing_zone_sensor",
    description="Ingests every complete file dropped into $RAG_DATA_DIR/landing (a folder per "
    "collection), and every upload, in runs of one collection each; keeps document status in "
    "step with runs that died.",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    job=ingest_job,
)
def landing_zone_sensor(
    context: SensorEvaluationContext, documents: DocumentStoreResource
) -> SensorResult:
    return landing_zone_tick(context, documents.store, looked_at=time.time())


def landing_zone_tick(
    context: SensorEvaluationContext, store: DocumentStore, looked_at: float
) -> SensorResult:
    """One evaluation of the sensor; a file first seen is settled if its mtime was at least
    SETTLE_SECONDS old at `looked_at`."""
    settings = get_settings()
    service = DocumentsService(store, settings.metadata_max_bytes, settings.sniff_timeout_seconds)
    for what, ids in reconcile(context.instance, store).items():
        if ids:
            context.log.warning(f"reconciled with the instance: {what}: {', '.join(ids)}")
    for key in release_deferred_partitions(context.instance, store):
        context.log.info(f"{key}: deleted earlier; its partition is removed now its runs are done")
    pending, taken_before, claimed_at = _load_cursor(context.cursor)
    try:
        landing.check_zone(store.landing_dir)
        current = landing.scan(store.landing_dir)
    except landing.LandingZoneError as exc:
        # Loud on every tick, yet uploads keep flowing: only the landing zone waits.
        context.log.error(f"landing zone refused: {exc}")
        refused, current = str(exc), {}
    else:
        refused = ""

    # Files registered on an earlier tick stay in landing/ until raw_document moves them on;
    # while they are unchanged and still the live document of their path, there is nothing to
    # look at.
    unchanged = [rel for rel, state in taken_before.items() if current.get(rel) == state]
    live = store.registry.reads.live_landing_paths(unchanged)
    taken = {rel: taken_before[rel] for rel in unchanged if rel in live}
    candidates = {rel: state for rel, state in current.items() if rel not in taken}
    counts: dict[str, int] = {}
    # In arrival order: a new version dropped right after the file it replaces must be
    # registered after it, or it could not name the document it supersedes.
    arrived = sorted(
        landing.ready(candidates, pending, looked_at), key=lambda rel: candidates[rel].mtime_ns
    )
    # The rest stay pending, already settled, for the next tick.
    later = set(arrived[get_settings().max_files_per_tick :])
    arrived = arrived[: get_settings().max_files_per_tick]
    for relpath in arrived:
        try:
            outcome = service.take_landing(relpath)
        except landing.LandingZoneError as exc:  # a folder swapped for a symlink meanwhile
            context.log.error(f"landing zone refused: {exc}")
            refused = str(exc)
            break
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
        if outcome.action in ("new", "in_flight"):
            taken[relpath] = candidates[relpath]
        elif outcome.action == "rejected" and outcome.document is not None:
            doc = outcome.document
            context.log.warning(f"rejected {relpath}: [{doc.error_code}] {doc.error_message}")
    pending = {
        rel: state
        for rel, state in candidates.items()
        if rel not in taken and (rel in later or (store.landing_dir / rel).exists())
    }

    # Uploads and landed files alike: each waiting document is claimed once. A claim made by
    # a tick whose result the daemon never applied (its cursor is not this one) is made again:
    # the same documents, so the same run key.
    lost = [
        key
        for key in store.registry.reads.submitted_after(claimed_at)
        if not context.instance.has_dynamic_partition(DOCUMENTS, key)
    ]
    now = time.time()
    waiting = by_collection(service.claim_waiting(now, lost))
    cursor = _dump_cursor(pending, taken, now if waiting else claimed_at)
    if not waiting:
        reason = f"landing zone refused: {refused}" if refused else _summary(counts)
        return SensorResult(skip_reason=reason or "no new files", cursor=cursor)
    new_keys = [doc.id for doc in waiting]
    slots = run_slots(context.instance, unlimited=settings.worker_concurrency)
    requests = batch_run_requests(waiting, free_slots=slots.free)
    context.log.info(
        f"{len(new_keys)} document(s) to ingest in {len(requests)} run(s), "
        f"{slots.free} of {slots.total} run slot(s) free; landing zone: "
        f"{_summary(counts) or 'nothing taken'}"
    )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(DOCUMENTS, new_keys)],
        cursor=cursor,
    )


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))


class SourceSyncFailed(Exception):
    """Some source could not be synced this tick; the others were."""


@sensor(
    name="sources_sensor",
    description="Keeps every source (bucket or web site) in step with its collection: new "
    "objects or pages become documents, changed ones new versions, removed ones are retired. "
    "The landing-zone sensor runs what it registers.",
    minimum_interval_seconds=get_settings().source_sync_interval_seconds,
    default_status=DefaultSensorStatus.RUNNING,
)
def sources_sensor(
    context: SensorEvaluationContext,
    documents: DocumentStoreResource,
    vector_index: VectorIndexResource,
) -> SensorResult:
    return sources_tick(context, documents.store, vector_index.get())


def sources_tick(
    context: SensorEvaluationContext,
    store: DocumentStore,
    index: VectorIndex,
    on_object: Callable[[str], None] | None = None,
) -> SensorResult:
    """Syncs each source once; fails the tick, naming them, if any sync failed (the cursor is
    in the registry, so what was taken before the failure stays taken)."""
    settings = get_settings()
    # A web sync starts fetches for at most WEB_SYNC_SECONDS, so the tick ends within the
    # sensor's 60 s evaluation timeout (bar one fetch's RAG_FETCH_TIMEOUT_SECONDS); the rest
    # of the pages wait for the next tick.
    syncer = source_sync(context.instance, store, index, settings, on_object, WEB_SYNC_SECONDS)
    done, failed = [], []
    for source in store.registry.sources.of_collection():
        try:
            report = syncer.sync(source, opener(source, settings))
        except SourceBusy:
            context.log.info(f"{source.id}: another sync of it is under way")
            continue
        summary = ", ".join(f"{n} {what}" for what, n in report.counts().items() if n)
        if report.error is not None:
            failed.append(f"{source.id}: {report.error}")
        else:
            done.append(f"{source.id}: {summary or 'no change'}")
    if failed:
        raise SourceSyncFailed("; ".join(failed))
    return SensorResult(skip_reason="; ".join(done) or "no sources")
