"""The rag-pipeline command line: add documents, read their status, search, query the catalog."""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag_pipeline.settings import Settings

EXIT_OK, EXIT_ERROR = 0, 1


def _instance() -> Any:
    from dagster import DagsterInstance

    # Dagster insists on an absolute DAGSTER_HOME; the default is the checkout's own.
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def _store(settings: Settings) -> Any:
    from rag_pipeline.core.store import DocumentStore

    return DocumentStore(settings.data_dir, settings.registry_url or None)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents import DocumentsService
    from rag_pipeline.core.extract import ExtractionError
    from rag_pipeline.core.metadata import MetadataError, parse
    from rag_pipeline.partitions import DOCUMENTS

    service = DocumentsService(_store(settings), settings.metadata_max_bytes)
    try:
        service.collection(args.collection)
        labels = parse(args.metadata, settings.metadata_max_bytes) if args.metadata else {}
    except (LookupError, MetadataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    instance = _instance()
    status = EXIT_OK
    for name in args.files:
        path = Path(name)
        try:
            accepted = service.add(
                path.read_bytes(),
                path.name,
                collection=args.collection,
                metadata=labels,
                chunk_size=args.chunk_size,
                chunk_overlap=args.chunk_overlap,
                submitted=True,
            )
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        except ExtractionError as exc:
            print(f"{name}: rejected [{exc.code}] {exc.message}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        doc_id = accepted.document.id
        if not instance.has_dynamic_partition(DOCUMENTS, doc_id):
            instance.add_dynamic_partitions(DOCUMENTS, [doc_id])
        print(doc_id)
    return status


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.status import document_reports, find_report

    store = _store(settings)
    if args.id:
        found = find_report(store, args.id)
        if found is None or (args.collection and found.collection not in args.collection):
            print(f"no document with id {args.id!r}", file=sys.stderr)
            return EXIT_ERROR
        reports = [found]
    else:
        unknown = _unknown_collections(store, args.collection)
        if unknown:
            print(f"error: no collection named {unknown[0]!r}", file=sys.stderr)
            return EXIT_ERROR
        reports = document_reports(store, collections=args.collection or None)
    for report in reports:
        if args.json:
            _print_json(report.to_dict())
            continue
        stages = " ".join(f"{name}={stage.state}" for name, stage in report.stages.items())
        line = (
            f"{report.id}\t{report.collection}\t{report.status}\tchunks={report.chunks}\t{stages}"
        )
        if report.error:
            line += f"\terror={report.error.stage}[{report.error.code}] {report.error.message}"
        print(line)
    return EXIT_OK


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.catalog import Catalog
    from rag_pipeline.core.embedding import get_embedder
    from rag_pipeline.core.facets import Facets
    from rag_pipeline.core.filters import FilterError, compile_filter
    from rag_pipeline.core.index import IndexUnavailable, VectorIndex, connect
    from rag_pipeline.core.lexical import LexicalIndex
    from rag_pipeline.core.search import SearchMode, search

    if not args.query.strip():
        print("the query is blank", file=sys.stderr)
        return EXIT_ERROR
    mode = SearchMode(args.mode)
    store = _store(settings)
    unknown = _unknown_collections(store, args.collection)
    try:
        where = compile_filter(args.filter)
    except FilterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if unknown:
        print(f"error: no collection named {unknown[0]!r}", file=sys.stderr)
        return EXIT_ERROR
    every = store.registry.collections()
    homes = [c for c in every if not args.collection or c.name in args.collection]
    scope = Facets(store.registry).scope(homes, where, everything=len(homes) == len(every))

    def run(mode: SearchMode) -> list[Any]:
        embedder, index = None, None
        if mode is not SearchMode.LEXICAL:
            embedder = get_embedder(settings.embedding_model, settings.embedding_batch_size)
            index = VectorIndex(connect(settings.chroma_url), settings.chroma_collection)
        return search(
            args.query,
            k=args.k,
            mode=mode,
            embedder=embedder,
            index=index,
            lexicon=LexicalIndex(store),
            catalog=Catalog(store),
            scope=scope,
        )

    try:
        results = run(mode)
    except IndexUnavailable as exc:
        if mode is not SearchMode.HYBRID:
            print(f"{exc} (try --mode lexical, which needs no vector index)", file=sys.stderr)
            return EXIT_ERROR
        print(f"warning: lexical results only: {exc}", file=sys.stderr)
        results = run(SearchMode.LEXICAL)
    for rank, result in enumerate(results, 1):
        if args.json:
            _print_json(asdict(result))
        else:
            snippet = " ".join(result.text.split())[:160]
            print(
                f"{rank}. {result.score:.3f} {result.document_id} p.{result.page} "
                f"({result.filename})\n   {snippet}"
            )
    return EXIT_OK


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    import duckdb

    from rag_pipeline.core.catalog import Catalog

    store = _store(settings)
    only = None
    if args.collection:
        unknown = _unknown_collections(store, args.collection)
        if unknown:
            print(f"error: no collection named {unknown[0]!r}", file=sys.stderr)
            return EXIT_ERROR
        only = {
            doc_id
            for name in args.collection
            for doc_id in store.registry.collection_document_ids(name)
        }
    try:
        columns, rows = Catalog(store, only=only).query(args.query)
    except duckdb.Error as exc:
        print(f"query failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        for row in rows:
            _print_json(dict(zip(columns, row, strict=True)))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join("" if v is None else str(v) for v in row))
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.backfill import backfill_collection
    from rag_pipeline.core.registry import STAGES

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


def _unknown_collections(store: Any, names: Sequence[str] | None) -> list[str]:
    known = {c.name for c in store.registry.collections()}
    return [name for name in names or [] if name not in known]


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.backup import (
        BackupError,
        check_targets,
        read_manifest,
        rebuild_vectors,
        restore_backup,
    )
    from rag_pipeline.core.index import IndexUnavailable, VectorIndex, connect
    from rag_pipeline.core.store import DocumentStore

    archive = Path(args.archive)
    data_dir = Path(args.data_dir).resolve() if args.data_dir else settings.data_dir
    home = Path(args.dagster_home or os.environ.get("DAGSTER_HOME") or "dagster_home").resolve()
    url = args.chroma_url or settings.chroma_url
    collection = args.collection or settings.chroma_collection
    try:
        check_targets(read_manifest(archive), data_dir, home)
        # Reach the index before unpacking anything, so an unreachable server refuses the restore.
        index = VectorIndex(connect(url), collection)
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

        from rag_pipeline.resources import release_index_write_pool

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
    from rag_pipeline.migrate import migrate, needs_migration

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
    from rag_pipeline.runs import DocumentRuns, Launcher

    return DocumentRuns(Launcher(_instance()))


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents import (
        DocumentBusy,
        DocumentNotFound,
        DocumentsService,
        InvalidOptions,
        check_document_options,
    )
    from rag_pipeline.core.embedding import max_tokens_for

    service = DocumentsService(_store(settings))
    runs = _runs()
    status = EXIT_OK
    try:
        for doc_id in args.ids:
            try:
                doc = service.get(doc_id)
                if doc.live:
                    check_document_options(
                        doc,
                        args.chunk_size,
                        args.chunk_overlap,
                        max_tokens=max_tokens_for(settings.embedding_model),
                        default_size=settings.chunk_size,
                        default_overlap=settings.chunk_overlap,
                    )
                rerun = service.reprocess(
                    doc_id, runs, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap
                )
            except (DocumentNotFound, DocumentBusy, InvalidOptions) as exc:
                print(f"{doc_id}: {exc}", file=sys.stderr)
                status = EXIT_ERROR
                continue
            print(f"{doc_id}\t{rerun.run_id}\tfrom {rerun.first_stage}")
    finally:
        runs.launcher.close()
    return status


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents import DocumentsService

    runs = _runs()
    try:
        retried = DocumentsService(_store(settings)).retry(
            runs,
            budget_bytes=int(settings.run_budget_mb * 1024 * 1024),
            max_docs=settings.max_docs_per_run,
            error_code=args.error_code,
            collection=args.collection,
            include_permanent=args.include_permanent,
            limit=args.limit,
        )
    finally:
        runs.launcher.close()
    for rerun in retried.runs:
        print(f"{rerun.run_id}\tfrom {rerun.first_stage}\t{','.join(rerun.document_ids)}")
    print(
        f"{len(retried.document_ids)} document(s) in {len(retried.runs)} run(s); "
        f"{retried.skipped_permanent} permanent failure(s) left alone",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _instance()  # DAGSTER_HOME made absolute, as the runs it executes expect
    from rag_pipeline.execution.worker import main as worker_main

    worker_main(concurrency=args.concurrency, loglevel=args.loglevel)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag-pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    add = sub.add_parser("add", help="register documents as partitions; prints one id per line")
    add.add_argument("files", nargs="+", metavar="FILE")
    add.add_argument("--chunk-size", type=int, help="tokens per chunk for these documents")
    add.add_argument("--chunk-overlap", type=int, help="tokens of overlap for these documents")
    add.add_argument("--collection", default="default", help="the collection (default: default)")
    add.add_argument("--metadata", help='a JSON object, e.g. \'{"team": "red"}\'')
    add.set_defaults(func=cmd_add)

    status = sub.add_parser("status", help="state per stage, read from the document registry")
    status.add_argument("id", nargs="?", help="a document id; all documents when left out")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.add_argument("--collection", action="append", help="only this collection (repeatable)")
    status.set_defaults(func=cmd_status)

    search = sub.add_parser("search", help="the top chunks for a query, best first")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5, help="how many results (default 5)")
    search.add_argument(
        "--mode",
        choices=["hybrid", "dense", "lexical"],
        default="hybrid",
        help="hybrid fuses dense and lexical scores (default); lexical is BM25 only",
    )
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.add_argument(
        "--collection", action="append", help="only this collection (repeatable; default: all)"
    )
    search.add_argument(
        "--filter",
        help='a JSON filter over metadata, e.g. \'{"year": {"$gte": 2020}}\' (see the README)',
    )
    search.set_defaults(func=cmd_search)

    sql = sub.add_parser("sql", help="run DuckDB SQL over the catalog (views documents, chunks)")
    sql.add_argument("query")
    sql.add_argument("--json", action="store_true", help="one JSON object per row")
    sql.add_argument(
        "--collection", action="append", help="the views hold only this collection (repeatable)"
    )
    sql.set_defaults(func=cmd_sql)

    backfill = sub.add_parser(
        "backfill",
        help="launch a Dagster backfill of one collection's documents (the daemon runs it)",
    )
    backfill.add_argument("--collection", required=True)
    backfill.add_argument(
        "--stages",
        nargs="+",
        choices=[
            "raw_document",
            "document_text",
            "document_chunks",
            "chunk_embeddings",
            "vector_index",
        ],
        help="the stages to run again (default: all five)",
    )
    backfill.set_defaults(func=cmd_backfill)

    migrate = sub.add_parser(
        "migrate", help="move a data dir from before the document registry into it (idempotent)"
    )
    migrate.set_defaults(func=cmd_migrate)

    reprocess = sub.add_parser(
        "reprocess",
        help="run documents again without uploading them: from their chunks with new chunk "
        "options, else from their text; prints id, run id and first stage",
    )
    reprocess.add_argument("ids", nargs="+", metavar="ID")
    reprocess.add_argument("--chunk-size", type=int, help="new tokens per chunk")
    reprocess.add_argument("--chunk-overlap", type=int, help="new tokens of overlap")
    reprocess.set_defaults(func=cmd_reprocess)

    retry = sub.add_parser(
        "retry",
        help="run failed documents again, from where they stopped, in batched runs; prints "
        "one line per run",
    )
    retry.add_argument(
        "--failed", action="store_true", required=True, help="the documents that failed"
    )
    retry.add_argument("--error-code", help="only those that failed with this code")
    retry.add_argument("--collection", help="only this collection's documents")
    retry.add_argument(
        "--include-permanent",
        action="store_true",
        help="also password_required, no_text_layer, unsupported_type and empty_file",
    )
    retry.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    retry.set_defaults(func=cmd_retry)

    worker = sub.add_parser(
        "worker",
        help="execute Dagster runs in warm processes (a Celery worker); runs until stopped",
    )
    worker.add_argument(
        "--concurrency", type=int, help="runs at once (default: RAG_WORKER_CONCURRENCY)"
    )
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    restore = sub.add_parser(
        "restore",
        help="restore a backup archive into an empty location and rebuild its vectors",
    )
    restore.add_argument("archive")
    restore.add_argument("--data-dir", help="where the data goes (default: RAG_DATA_DIR)")
    restore.add_argument(
        "--dagster-home", help="where the instance storage goes (default: DAGSTER_HOME)"
    )
    restore.add_argument(
        "--chroma-url",
        help="the Chroma server the vectors are rebuilt in (default: RAG_CHROMA_URL)",
    )
    restore.add_argument(
        "--collection",
        help="the Chroma collection of `default`, which names the others' too "
        "(default: RAG_CHROMA_COLLECTION)",
    )
    restore.set_defaults(func=cmd_restore)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Read per command, not cached: tests run several commands in one process.
    settings = Settings()
    try:
        code: int = args.func(args, settings)
    except Exception as exc:
        # One readable line instead of a traceback for failures the user can act on.
        if type(exc).__name__ in ("IndexUnavailable", "ModelUnavailable", "ValueError"):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        raise
    return code


if __name__ == "__main__":
    sys.exit(main())
