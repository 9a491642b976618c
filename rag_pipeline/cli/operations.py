"""The rag-pipeline commands that operate the service rather than its documents: backfill a
collection, restore a backup, migrate, reprocess, retry, run a warm worker, and serve MCP over
stdio."""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rag_pipeline.cli.support import EXIT_ERROR, EXIT_OK
from rag_pipeline.cli.support import instance as _instance
from rag_pipeline.cli.support import store as _store
from rag_pipeline.settings import Settings


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.registry import STAGES
    from rag_pipeline.orchestration.runs.backfill import backfill_collection

    try:
        stages = args.stages or STAGES
        backfill_id, count = backfill_collection(
            _instance(), _store(settings), args.collection, stages
        )
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"backfill {backfill_id}: {count} documents of collection {args.collection!r}; the "
        "daemon runs it (Dagster UI: Overview > Backfills)"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.retrieval.vector_index import IndexUnavailable, VectorIndex, connect
    from rag_pipeline.core.storage.backup import (
        BackupError,
        check_index_empty,
        check_targets,
        read_manifest,
        rebuild_vectors,
        restore_backup,
    )
    from rag_pipeline.core.storage.data_dir import DocumentStore

    archive = Path(args.archive)
    data_dir = Path(args.data_dir).resolve() if args.data_dir else settings.data_dir
    home = Path(args.dagster_home or os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    url = args.chroma_url or settings.chroma_url
    collection = args.collection or settings.chroma_collection
    try:
        check_targets(read_manifest(archive), data_dir, home)
        # Reach the index, and find it empty, before unpacking anything: an unreachable server
        # or a live index refuses the restore with nothing written.
        index = VectorIndex(connect(url), collection)
        if not args.force:
            check_index_empty(index)
        manifest = restore_backup(archive, data_dir, home)
    except (BackupError, IndexUnavailable) as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"restored {len(manifest['files'])} files, {manifest.get('documents')} documents, "
        f"from {manifest['created_at']} into {data_dir}"
    )
    if manifest.get("instance_storage") == "postgres":
        print(
            f"the instance's PostgreSQL dump is at {home / 'postgres.sql'}: load it into an "
            "empty database with `psql -f`, then point dagster.yaml at that database"
        )
    else:
        from dagster import DagsterInstance

        from rag_pipeline.orchestration.resources import release_index_write_pool

        with DagsterInstance.from_config(str(home)) as restored:
            freed = release_index_write_pool(restored)
        print(
            f"instance storage restored into {home}; freed {len(freed)} index-write pool "
            "claim(s) left by processes of the backed-up deployment"
        )
    written, skipped = rebuild_vectors(
        DocumentStore(data_dir, settings.registry_url or None), index
    )
    print(f"rebuilt {written} vectors into the collection {collection!r} at {url}")
    for doc_id, reason in skipped.items():
        print(
            f"{doc_id}: vectors not rebuilt: {reason}; materialize its vector_index again",
            file=sys.stderr,
        )
    return EXIT_ERROR if skipped else EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.orchestration.legacy_migration import migrate, needs_migration

    store = _store(settings)
    if not needs_migration(store):
        print(f"nothing to migrate in {store.root}")
        return EXIT_OK
    counts = migrate(_instance(), store)
    print(
        f"migrated {counts['documents']} documents, {counts['deleted']} deleted, "
        f"{counts['uploads']} waiting uploads and {counts['rejected']} rejected files into the "
        f"registry; the old files are under {store.root / 'legacy'}"
    )
    return EXIT_OK


def _runs() -> Any:
    from rag_pipeline.orchestration.runs.run_requests import DocumentRuns, RunSubmitter

    return DocumentRuns(RunSubmitter(_instance()))


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents.errors import (
        DocumentBusy,
        DocumentNotFound,
        InvalidOptions,
    )
    from rag_pipeline.core.documents.options import check_options
    from rag_pipeline.core.documents.service import DocumentsService

    service = DocumentsService(_store(settings))
    runs = _runs()
    status = EXIT_OK
    try:
        for doc_id in args.ids:
            try:
                doc = service.get(doc_id)
                if doc.live:
                    home = service.store.registry.tenancy.collection(doc.collection)
                    check_options(
                        args.chunk_size, args.chunk_overlap, settings.chunk_defaults(), home, doc
                    )
                rerun = service.reruns.reprocess(
                    doc_id, runs, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap
                )
            except (DocumentNotFound, DocumentBusy, InvalidOptions) as exc:
                print(f"{doc_id}: {exc}", file=sys.stderr)
                status = EXIT_ERROR
                continue
            print(f"{doc_id}\t{rerun.run_id}\tfrom {rerun.first_stage}")
    finally:
        runs.submitter.close()
    return status


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents.service import DocumentsService

    runs = _runs()
    try:
        retried = DocumentsService(_store(settings)).reruns.retry(
            runs,
            budget_bytes=settings.run_budget_bytes,
            max_docs=settings.max_docs_per_run,
            error_code=args.error_code,
            collection=args.collection,
            include_permanent=args.include_permanent,
            limit=args.limit,
        )
    finally:
        runs.submitter.close()
    for rerun in retried.runs:
        print(f"{rerun.run_id}\tfrom {rerun.first_stage}\t{','.join(rerun.document_ids)}")
    print(
        f"{len(retried.document_ids)} document(s) in {len(retried.runs)} run(s); "
        f"{retried.skipped_permanent} permanent failure(s) left alone",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.tenancy.api_keys import KeysService, Unauthenticated

    key = args.api_key or settings.mcp_api_key
    # Checked once before serving: an agent configured with a wrong key learns it at start,
    # on stderr, rather than from every tool call failing.
    try:
        KeysService(_store(settings).registry).principal(
            key, settings.api_key, settings.open_access
        )
    except Unauthenticated as exc:
        print(
            f"rag-pipeline mcp: {exc.message} (give a key made with POST /keys or the console "
            "in RAG_MCP_API_KEY or --api-key)",
            file=sys.stderr,
        )
        return EXIT_ERROR

    from rag_api.mcp.stdio import serve

    serve(settings, key, _instance())
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _instance()  # DAGSTER_HOME made absolute, as the runs it executes expect
    from rag_pipeline.execution.worker import main as worker_main

    worker_main(concurrency=args.concurrency, loglevel=args.loglevel)
    return EXIT_OK
