"""Operations jobs: a consistent, restorable backup, and cleanup of what nobody needs anymore."""

import os
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    Failure,
    OpExecutionContext,
    Output,
    RetryPolicy,
    RunsFilter,
    in_process_executor,
    job,
    op,
)

from rag_pipeline.core.documents.landing import LandingZoneError
from rag_pipeline.core.storage import backup, cleanup
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import (
    DOCUMENTS,
    release_deferred_partitions,
    release_partition,
)
from rag_pipeline.orchestration.resources import (
    DocumentStoreResource,
    OperationsResource,
    VectorIndexResource,
    index_write_slot,
)
from rag_pipeline.orchestration.runs import switches
from rag_pipeline.orchestration.runs.reconcile import reconcile

_PACKAGES = ("rag-ingest", "dagster", "chromadb", "duckdb", "pypdf", "sentence-transformers")


def _versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def postgres_dumper(instance: DagsterInstance) -> Callable[[Path], None] | None:
    """pg_dump of the instance's database when it lives in PostgreSQL, else None."""
    url = getattr(instance.run_storage, "postgres_url", None)
    if not url:
        return None
    parsed = urlparse(url)

    def dump(target: Path) -> None:
        # The password goes through the environment, never the command line or the logs.
        env = {**os.environ, "PGPASSWORD": unquote(parsed.password or "")}
        command = [
            "pg_dump", "--no-owner", "--clean", "--if-exists",
            "--host", parsed.hostname or "127.0.0.1", "--port", str(parsed.port or 5432),
            "--username", unquote(parsed.username or "postgres"),
            "--file", str(target), parsed.path.lstrip("/"),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {done.stderr.strip()[:500]}")

    return dump


@op(
    description="Archive the raw store, the catalog and the instance's storage; the vectors are "
    "rebuilt from the catalog on restore.",
    retry_policy=RetryPolicy(max_retries=2, delay=30),
)
def make_backup(
    context: OpExecutionContext,
    documents: DocumentStoreResource,
    vector_index: VectorIndexResource,
    operations: OperationsResource,
) -> Output[None]:
    started = time.perf_counter()
    instance = context.instance
    store = documents.store
    archive, manifest = backup.create_backup(
        store=store,
        dagster_home=Path(instance.root_directory),
        backup_dir=Path(operations.backup_dir),
        pause_index_writes=lambda: index_write_slot(
            instance, context.run_id, "backup", log=context.log.warning
        ),
        postgres_dump=postgres_dumper(instance),
        facts={
            "versions": _versions(),
            "documents": len(instance.get_dynamic_partitions(_partitions())),
            "chroma_collection": vector_index.collection,
        },
    )
    pruned = backup.prune(Path(operations.backup_dir), operations.backup_retention_days, archive)
    context.log.info(f"wrote {archive}; removed {len(pruned)} archive(s) past retention")
    return Output(
        None,
        metadata={
            "path": str(archive),
            "bytes": archive.stat().st_size,
            "files": len(manifest["files"]),
            "documents": manifest["documents"],
            "instance_storage": manifest["instance_storage"],
            "indexed_documents": manifest["vector_index"]["documents"],
            "pruned": len(pruned),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )


def _partitions() -> str:
    return DOCUMENTS


@op(description="Apply every cleanup rule and report what each removed.")
def clean_up(
    context: OpExecutionContext,
    documents: DocumentStoreResource,
    vector_index: VectorIndexResource,
    operations: OperationsResource,
) -> Output[None]:
    instance = context.instance
    store = documents.store
    hour, day = 3600.0, 86400.0
    # Normally the sensor does these within seconds; here too, in case the sensor is off.
    reconciled = reconcile(instance, store)
    released = release_deferred_partitions(instance, store)
    partitions = set(instance.get_dynamic_partitions(_partitions()))

    def is_live(doc_id: str) -> bool:
        return doc_id in partitions or store.read_source(doc_id) is not None

    refused: list[str] = []

    def in_landing_zone(rule: Callable[[DocumentStore, float], int], older_than_s: float) -> int:
        try:
            return rule(store, older_than_s)
        except LandingZoneError as exc:
            refused.append(str(exc))
            return 0

    counts: dict[str, Any] = {
        "processed_deleted": in_landing_zone(
            cleanup.processed_files, operations.cleanup_processed_after_hours * hour
        ),
        "rejected_deleted": in_landing_zone(
            cleanup.rejected_files, operations.cleanup_rejected_after_days * day
        ),
        "partial_deleted": cleanup.partial_files(
            store, operations.cleanup_partial_after_hours * hour
        ),
        "orphan_artifacts_deleted": cleanup.orphan_artifacts(store, is_live),
        "deleted_partitions_released": len(released),
        "statuses_reconciled": sum(len(ids) for ids in reconciled.values()),
    }
    # Each swap holds the index-write pool itself, to remove the old generation.
    counts["model_switches_completed"] = len(
        switches.complete_ready(instance, store, vector_index.get(), context.run_id)
    )
    with index_write_slot(instance, context.run_id, "cleanup", log=context.log.warning):
        homeless, dropped = cleanup.deleted_collections(
            store, vector_index.get(), "its collection was deleted"
        )
        counts["orphan_vectors_deleted"] = cleanup.orphan_vectors(
            vector_index.get(),
            is_live,
            [c.index_suffix for c in store.registry.tenancy.collections()],
        )
    for doc_id in homeless:
        release_partition(instance, store, doc_id)
    counts["deleted_collections_documents_retired"] = len(homeless)
    counts["deleted_collections_indexes_dropped"] = len(dropped)
    counts["runs_deleted"] = _delete_old_runs(
        instance, operations.run_retention_days, keep=context.run_id
    )
    context.log.info(", ".join(f"{k}={v}" for k, v in counts.items()))
    if refused:
        # Every other rule has run; the run fails so the refusal is seen.
        raise Failure(f"landing zone refused: {refused[0]}", metadata=counts, allow_retries=False)
    return Output(None, metadata=counts)


def _delete_old_runs(instance: DagsterInstance, days: float, keep: str) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=days)
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    records = instance.get_run_records(
        filters=RunsFilter(statuses=finished, updated_before=cutoff), limit=10_000
    )
    deleted = 0
    for record in records:
        if record.dagster_run.run_id != keep:
            instance.delete_run(record.dagster_run.run_id)
            deleted += 1
    return deleted


@job(executor_def=in_process_executor, description="A consistent, restorable backup archive.")
def backup_job() -> None:
    make_backup()


@job(executor_def=in_process_executor, description="Landing zone, orphans and run history.")
def cleanup_job() -> None:
    clean_up()
