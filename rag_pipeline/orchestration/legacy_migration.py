"""Bring a data dir from before the registry into it: `rag-pipeline migrate`, and at start-up.

Before the registry, a document's life was spread over files: `sources/<id>.json` (what was
registered), `tombstones/<id>.json` (deleted), `landing/.uploads/<id>.json` (an upload waiting
for the sensor), `landing/rejected/**/<file>.json` (a rejected file) and
`partition_releases/<id>` (a deleted document's partition still to remove). Status was read
from the Dagster instance. Migration turns each into a registry row, takes each live document's
status from the instance once (its latest materialization or error per stage since it was
registered), and moves the old files under `legacy/`, so nothing is lost and it runs once.
"""

import fcntl
import json
import shutil
import time
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from rag_pipeline.core.registry import STAGES
from rag_pipeline.core.registry.model import documents, fresh_row, stages
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import DOCUMENTS

LEGACY = "legacy"
_OLD_DIRS = ("sources", "tombstones", "partition_releases")
_UPLOADS = ".uploads"


def needs_migration(store: DocumentStore) -> bool:
    return (
        any((store.root / name).is_dir() for name in _OLD_DIRS)
        or (store.landing_dir / _UPLOADS).is_dir()
    )


def migrate(instance: DagsterInstance, store: DocumentStore) -> dict[str, int]:
    """Import the old layout into the registry; returns how many of each kind were imported.

    Two processes starting at once (the API and the daemon's first tick, say): one migrates,
    the other finds nothing left to do.
    """
    store.root.mkdir(parents=True, exist_ok=True)
    with (store.root / ".migrate.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not needs_migration(store):
            return dict.fromkeys(("documents", "deleted", "uploads", "rejected"), 0)
        return _migrate(instance, store)


def _migrate(instance: DagsterInstance, store: DocumentStore) -> dict[str, int]:
    counts = {"documents": 0, "deleted": 0, "uploads": 0, "rejected": 0}
    rows: list[dict[str, Any]] = []
    stage_rows: list[dict[str, Any]] = []
    live: set[str] = set()
    for path in sorted((store.root / "sources").glob("*.json")):
        record = json.loads(path.read_bytes())
        doc_id = record["document_id"]
        live.add(doc_id)
        row, own_stages = _live_row(instance, record)
        rows.append(row)
        stage_rows.extend(own_stages)
        counts["documents"] += 1
    for path in sorted((store.root / "tombstones").glob("*.json")):
        tomb = json.loads(path.read_bytes())
        if tomb["document_id"] in live:
            continue
        rows.append(_deleted_row(instance, store, tomb))
        counts["deleted"] += 1
    for path in sorted((store.landing_dir / _UPLOADS).glob("*.json")):
        upload = _upload_row(store, json.loads(path.read_bytes()), live)
        if upload is not None:
            rows.append(upload)
            counts["uploads"] += 1
    for path in sorted((store.landing_dir / "rejected").rglob("*.json")):
        rejected = _rejected_row(path, live | {r["id"] for r in rows})
        if rejected is not None:
            rows.append(rejected)
            path.unlink()
            counts["rejected"] += 1
    with store.registry.db.engine.begin() as conn:
        existing = {
            r.id for r in conn.execute(documents.select().with_only_columns(documents.c.id))
        }
        fresh = [row for row in rows if row["id"] not in existing]
        if fresh:
            conn.execute(documents.insert(), fresh)
            ids = {row["id"] for row in fresh}
            own = [row for row in stage_rows if row["document_id"] in ids]
            if own:
                conn.execute(stages.insert(), own)
    _retire_old_layout(store)
    return counts


def _base_row(doc_id: str, now: float) -> dict[str, Any]:
    return {"id": doc_id, **fresh_row(now)}


def _live_row(
    instance: DagsterInstance, record: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc_id = record["document_id"]
    since = float(record.get("registered_at") or 0.0)
    row = _base_row(doc_id, since)
    row.update(
        filename=record.get("filename"),
        sha256=record.get("sha256"),
        bytes=record.get("size"),
        chunk_size=record.get("chunk_size"),
        chunk_overlap=record.get("chunk_overlap"),
        origin="landing" if record.get("landing_path") else "cli",
        source_path=record.get("source_path"),
        landing_path=record.get("landing_path"),
        supersedes=record.get("supersedes"),
        # Its partition exists (or its caller adds it): nothing for pickup to do.
        submitted_at=0.0,
    )
    own_stages = []
    for stage in STAGES:
        records_filter = AssetRecordsFilter(
            asset_key=AssetKey(stage), asset_partitions=[doc_id], after_timestamp=since
        )
        mats = instance.fetch_materializations(records_filter, limit=1).records
        errors = [
            r
            for r in instance.fetch_observations(records_filter, limit=10).records
            if r.asset_observation and "error_code" in r.asset_observation.metadata
        ]
        mat = mats[0] if mats else None
        error = errors[0] if errors else None
        if error is not None and (mat is None or error.timestamp > mat.timestamp):
            observation = error.asset_observation
            said = _plain(observation.metadata if observation else {})
            row.update(
                status="failed",
                error_stage=stage,
                error_code=str(said["error_code"]),
                error_message=str(said.get("error_message", "")),
                run_id=error.run_id,
            )
            own_stages.append(_stage(doc_id, stage, "failed", error.timestamp, error.run_id, {}))
        elif mat is not None and mat.asset_materialization is not None:
            meta = _plain(mat.asset_materialization.metadata)
            own_stages.append(
                _stage(doc_id, stage, "materialized", mat.timestamp, mat.run_id, meta)
            )
            row["run_id"] = mat.run_id
            if stage == "document_chunks" and "chunks" in meta:
                row["chunks"] = int(meta["chunks"])
            if stage == "vector_index" and row["status"] != "failed":
                row.update(status="indexed", indexed_at=mat.timestamp)
    if row["status"] == "queued" and own_stages:
        row["status"] = "processing"
    return row, own_stages


def _plain(metadata: Any) -> dict[str, Any]:
    """Metadata values as JSON the registry keeps: numbers, strings and booleans as they are."""
    out: dict[str, Any] = {}
    for name, value in metadata.items():
        raw = getattr(value, "value", value)
        out[name] = raw if isinstance(raw, int | float | str | bool) else str(raw)
    return out


def _stage(
    doc_id: str, stage: str, state: str, at: float, run_id: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    return {
        "document_id": doc_id,
        "stage": stage,
        "state": state,
        "at": at,
        "run_id": run_id,
        "metadata": metadata,
    }


def _deleted_row(
    instance: DagsterInstance, store: DocumentStore, tomb: dict[str, Any]
) -> dict[str, Any]:
    doc_id = tomb["document_id"]
    deleted_at = float(tomb.get("deleted_at") or time.time())
    row = _base_row(doc_id, deleted_at)
    row.update(
        filename=tomb.get("filename"),
        status="deleted",
        deleted_at=deleted_at,
        delete_reason=tomb.get("reason"),
        superseded_by=tomb.get("superseded_by"),
        submitted_at=0.0,
        # A partition kept for a run that named it: the sensor removes it once that run is done.
        release_partition=instance.has_dynamic_partition(DOCUMENTS, doc_id),
    )
    return row


def _upload_row(
    store: DocumentStore, upload: dict[str, Any], live: set[str]
) -> dict[str, Any] | None:
    """An upload the sensor had not taken yet: its bytes move to incoming/ and pickup takes
    it from the registry. One whose file never arrived was never acknowledged."""
    doc_id = upload["document_id"]
    landed = store.landing_dir / upload["landing_path"]
    if doc_id in live or not landed.is_file():
        return None
    copy = store.keep_incoming(doc_id, upload["filename"], landed.read_bytes())
    landed.unlink()
    row = _base_row(doc_id, float(upload["uploaded_at"]))
    row.update(
        filename=upload["filename"],
        sha256=upload.get("sha256"),
        bytes=copy.stat().st_size,
        chunk_size=upload.get("chunk_size"),
        chunk_overlap=upload.get("chunk_overlap"),
        origin="upload",
        source_path=str(copy),
        supersedes=upload.get("supersedes"),
    )
    return row


def _rejected_row(path: Path, taken: set[str]) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_bytes())
        doc_id = record.get("document_id") or f"rejected:{record['landing_path']}"
    except (ValueError, TypeError, KeyError):
        return None  # not one of ours: a rejected file may itself be JSON
    if doc_id in taken:
        return None
    row = _base_row(doc_id, float(record.get("rejected_at") or time.time()))
    row.update(
        filename=record.get("filename"),
        status="rejected",
        error_stage="landing",
        error_code=record.get("code"),
        error_message=record.get("message"),
        landing_path=record.get("landing_path"),
        source_path=str(path.with_name(path.name[: -len(".json")])),
    )
    return row


def _retire_old_layout(store: DocumentStore) -> None:
    legacy = store.root / LEGACY / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for name in _OLD_DIRS:
        if (store.root / name).is_dir():
            legacy.mkdir(parents=True, exist_ok=True)
            shutil.move(store.root / name, legacy / name)
    uploads = store.landing_dir / _UPLOADS
    if uploads.is_dir():
        legacy.mkdir(parents=True, exist_ok=True)
        shutil.move(uploads, legacy / "uploads")
    api = store.landing_dir / "api"
    if api.is_dir() and not any(p.is_file() for p in api.rglob("*")):
        shutil.rmtree(api)
