"""Document status, read from the Dagster instance: the one source of truth.

A stage is `materialized` by its latest materialization, `failed` by the error observation the
ingestion step records, `in_progress` while a run holds it. Events older than the document's
registration are ignored: Dagster keeps the history of a deleted partition key, and a document
added again must not look indexed before it really is.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dagster import (
    AssetKey,
    AssetPartitionStatus,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
    RunsFilter,
)
from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG

from rag_pipeline.core import landing
from rag_pipeline.core.store import DocumentStore
from rag_pipeline.partitions import DOCUMENT_IDS_TAG, documents

STAGES = ("raw_document", "document_text", "document_chunks", "chunk_embeddings", "vector_index")
_FETCH_LIMIT = 10_000


class DocumentStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    indexed = "indexed"
    failed = "failed"
    rejected = "rejected"
    deleted = "deleted"


class StageState(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    materialized = "materialized"
    failed = "failed"


@dataclass
class StageReport:
    state: StageState = StageState.pending
    materialized_at: str | None = None
    failed_at: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ErrorReport:
    stage: str
    code: str
    message: str


@dataclass
class DocumentReport:
    id: str
    filename: str | None
    status: DocumentStatus
    stages: dict[str, StageReport]
    error: ErrorReport | None
    chunks: int | None
    created_at: str | None
    indexed_at: str | None
    run_ids: list[str]
    deleted_at: str | None = None
    superseded_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _metadata_values(metadata: Any) -> dict[str, Any]:
    out = {}
    for name, value in metadata.items():
        raw = getattr(value, "value", value)
        out[name] = str(raw) if not isinstance(raw, int | float | str | bool) else raw
    return out


def _latest_by_partition(records: Sequence[Any], keys: set[str]) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for record in records:
        key = record.partition_key
        if key in keys and key not in latest:
            latest[key] = record
    return latest


def document_reports(
    instance: DagsterInstance,
    store: DocumentStore,
    keys: Sequence[str] | None = None,
    partitions_def: DynamicPartitionsDefinition = documents,
) -> list[DocumentReport]:
    """One report per document, in partition order; unknown ids are left out."""
    all_keys = list(instance.get_dynamic_partitions(str(partitions_def.name)))
    partition_keys = all_keys
    if keys is not None:
        wanted = set(keys)
        partition_keys = [k for k in all_keys if k in wanted]
    if not partition_keys:
        return []
    sources = {k: store.read_source(k) for k in partition_keys}
    # Deleted, with its partition kept until a queued run that names it is done: deleted.
    partition_keys = [
        k for k in partition_keys if sources[k] is not None or store.read_tombstone(k) is None
    ]
    if not partition_keys:
        return []
    key_set = set(partition_keys)
    since = min((s.registered_at for s in sources.values() if s), default=0.0)
    reports = {k: {stage: StageReport() for stage in STAGES} for k in partition_keys}
    errors: dict[str, dict[str, tuple[float, ErrorReport]]] = {k: {} for k in partition_keys}
    materialized_ts: dict[tuple[str, str], float] = {}

    for stage in STAGES:
        asset_key = AssetKey(stage)
        records_filter = AssetRecordsFilter(
            asset_key=asset_key, asset_partitions=partition_keys, after_timestamp=since
        )
        mats = instance.fetch_materializations(records_filter, limit=_FETCH_LIMIT).records
        obs = instance.fetch_observations(records_filter, limit=_FETCH_LIMIT).records
        for key, record in _latest_by_partition(mats, key_set).items():
            if record.timestamp < _registered(sources, key):
                continue
            materialized_ts[key, stage] = record.timestamp
            report = reports[key][stage]
            report.state = StageState.materialized
            report.materialized_at = _iso(record.timestamp)
            report.run_id = record.run_id
            report.metadata = _metadata_values(record.asset_materialization.metadata)
        failures = [
            r for r in obs if r.asset_observation and "error_code" in r.asset_observation.metadata
        ]
        for key, record in _latest_by_partition(failures, key_set).items():
            if record.timestamp < _registered(sources, key):
                continue
            if materialized_ts.get((key, stage), 0.0) > record.timestamp:
                continue
            observation = record.asset_observation
            meta = _metadata_values(observation.metadata if observation else {})
            report = reports[key][stage]
            report.state = StageState.failed
            report.failed_at = _iso(record.timestamp)
            report.run_id = record.run_id
            errors[key][stage] = (
                record.timestamp,
                ErrorReport(stage, str(meta["error_code"]), str(meta.get("error_message", ""))),
            )
        statuses = instance.get_status_by_partition(asset_key, partition_keys, partitions_def)
        for key, status in (statuses or {}).items():
            report = reports[key][stage]
            if status == AssetPartitionStatus.IN_PROGRESS and report.state != StageState.failed:
                report.state = StageState.in_progress

    waiting = _in_unstarted_runs(instance, all_keys)
    dead = _in_failed_runs(instance, all_keys)
    for key in partition_keys:
        # A run from before the document was registered again belongs to its previous life.
        if key in dead and key not in waiting and dead[key][0] >= _registered(sources, key):
            _stopped_by_run(reports[key], errors[key], dead[key][1])
    return [
        _summarise(key, sources[key], reports[key], errors[key], key in waiting)
        for key in partition_keys
    ]


def _stopped_by_run(
    stages: dict[str, StageReport],
    errors: dict[str, tuple[float, ErrorReport]],
    run: Any,
) -> None:
    """The first unfinished stage failed with its run, unless the document has its own error or
    a later run is working on it or has finished it."""
    states = [stages[s].state for s in STAGES]
    if (
        errors
        or StageState.in_progress in states
        or stages["vector_index"].state == (StageState.materialized)
    ):
        return
    stage = next(s for s in STAGES if stages[s].state != StageState.materialized)
    reason = run.tags.get(RUN_FAILURE_REASON_TAG, "an error").lower().replace("_", " ")
    stages[stage].state = StageState.failed
    stages[stage].run_id = run.run_id
    message = f"run {run.run_id[:8]} stopped on {reason} and will not be retried"
    errors[stage] = (0.0, ErrorReport(stage, "run_failed", message))


def _in_unstarted_runs(instance: DagsterInstance, ordered_keys: list[str]) -> set[str]:
    """Documents whose run is still in the queue: Dagster calls them in progress already."""
    unstarted = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
    runs = instance.get_runs(filters=RunsFilter(statuses=unstarted), limit=1000)
    return {key for run in runs for key in _run_keys(run, ordered_keys)}


def _in_failed_runs(
    instance: DagsterInstance, ordered_keys: list[str]
) -> dict[str, tuple[float, Any]]:
    """Documents of runs that failed for good (the daemon will not retry them): the latest such
    run of each, with when it was created.

    A run can die without any document failing on its own: a killed worker whose retries are
    used up, or an error no stage expected, such as the index unreachable past the step's
    retries. Without this those documents would read `processing` forever.
    """
    failed = RunsFilter(statuses=[DagsterRunStatus.FAILURE])
    retries = instance.run_retries_enabled
    found: dict[str, tuple[float, Any]] = {}
    for record in instance.get_run_records(filters=failed, limit=1000):
        run = record.dagster_run
        if retries and run.tags.get(WILL_RETRY_TAG) != "false":
            continue  # retried, or not yet decided: a new run will take the documents on
        for key in _run_keys(run, ordered_keys):
            found.setdefault(key, (record.create_timestamp.timestamp(), run))
    return found


def _run_keys(run: Any, ordered_keys: list[str]) -> list[str]:
    tags = run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    if DOCUMENT_IDS_TAG in tags:
        # Named by the sensor: still right after a document at either end was deleted.
        return [key for key in tags[DOCUMENT_IDS_TAG].split(",") if key]
    position = {key: i for i, key in enumerate(ordered_keys)}
    start = position.get(tags.get("dagster/asset_partition_range_start", ""))
    end = position.get(tags.get("dagster/asset_partition_range_end", ""))
    return ordered_keys[start : end + 1] if start is not None and end is not None else []


def _registered(sources: dict[str, Any], key: str) -> float:
    source = sources.get(key)
    return float(source.registered_at) if source else 0.0


def _summarise(
    key: str,
    source: Any,
    stages: dict[str, StageReport],
    errors: dict[str, tuple[float, ErrorReport]],
    run_not_started: bool = False,
) -> DocumentReport:
    states = [stages[s].state for s in STAGES]
    error = max(errors.values(), key=lambda item: item[0])[1] if errors else None
    index = stages["vector_index"]
    if error is not None:
        status = DocumentStatus.failed
    elif index.state == StageState.materialized:
        status = DocumentStatus.indexed
    elif StageState.materialized in states or (
        StageState.in_progress in states and not run_not_started
    ):
        status = DocumentStatus.processing
    else:
        status = DocumentStatus.queued
    chunk_meta = stages["document_chunks"].metadata
    run_ids = sorted({s.run_id for s in stages.values() if s.run_id})
    return DocumentReport(
        id=key,
        filename=source.filename if source else None,
        status=status,
        stages=stages,
        error=error,
        chunks=int(chunk_meta["chunks"]) if "chunks" in chunk_meta else None,
        created_at=_iso(source.registered_at) if source else None,
        indexed_at=index.materialized_at if status == DocumentStatus.indexed else None,
        run_ids=run_ids,
    )


def rejected_reports(store: DocumentStore) -> list[DocumentReport]:
    """Files that never became documents: empty, unsupported or unreadable."""
    return [
        DocumentReport(
            id=r.document_id or f"rejected:{r.landing_path}",
            filename=r.filename,
            status=DocumentStatus.rejected,
            stages={},
            error=ErrorReport("landing", r.code, r.message),
            chunks=None,
            created_at=_iso(r.rejected_at),
            indexed_at=None,
            run_ids=[],
        )
        for r in landing.rejections(store)
    ]


def deleted_report(store: DocumentStore, doc_id: str) -> DocumentReport | None:
    tombstone = store.read_tombstone(doc_id)
    if tombstone is None:
        return None
    by = tombstone.get("superseded_by")
    return DocumentReport(
        id=doc_id,
        filename=tombstone.get("filename"),
        status=DocumentStatus.deleted,
        stages={},
        error=None,
        chunks=None,
        created_at=None,
        indexed_at=None,
        run_ids=[],
        deleted_at=_iso(tombstone.get("deleted_at")),
        superseded_by=by,
    )


def find_report(
    instance: DagsterInstance, store: DocumentStore, doc_id: str
) -> DocumentReport | None:
    """One document's report, whatever became of it: live, deleted or rejected."""
    for report in document_reports(instance, store, [doc_id]):
        return report
    # Uploaded again after a delete: the new upload is what the id means now.
    for found in (waiting_report(store, doc_id), deleted_report(store, doc_id)):
        if found is not None:
            return found
    return next((r for r in rejected_reports(store) if r.id == doc_id), None)


def waiting_report(store: DocumentStore, doc_id: str) -> DocumentReport | None:
    """Uploaded or registered, but not yet a partition: the sensor has yet to take it."""
    source = store.read_source(doc_id)
    upload = landing.pending_upload(store, doc_id) if source is None else None
    if source is None and upload is None:
        return None
    created = source.registered_at if source else upload.uploaded_at if upload else None
    return DocumentReport(
        id=doc_id,
        filename=source.filename if source else upload.filename if upload else None,
        status=DocumentStatus.queued,
        stages={stage: StageReport() for stage in STAGES},
        error=None,
        chunks=None,
        created_at=_iso(created),
        indexed_at=None,
        run_ids=[],
    )
