"""The rag-pipeline command line: add documents, read their status, search, query the catalog."""

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag_pipeline.cli import api_keys as cli_keys
from rag_pipeline.cli import collections as cli_collections
from rag_pipeline.cli import sources as cli_sources
from rag_pipeline.cli.operations import (
    cmd_backfill,
    cmd_mcp,
    cmd_migrate,
    cmd_reprocess,
    cmd_restore,
    cmd_retry,
    cmd_worker,
)
from rag_pipeline.cli.support import EXIT_ERROR, EXIT_OK
from rag_pipeline.cli.support import instance as _instance
from rag_pipeline.cli.support import print_json as _print_json
from rag_pipeline.cli.support import store as _store
from rag_pipeline.cli.support import unknown_collections as _unknown_collections
from rag_pipeline.settings import Settings


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.documents.metadata import MetadataError, parse
    from rag_pipeline.core.documents.service import DocumentsService
    from rag_pipeline.core.stages.extract import ExtractionError
    from rag_pipeline.orchestration.partitions import DOCUMENTS

    service = DocumentsService(
        _store(settings), settings.metadata_max_bytes, settings.sniff_timeout_seconds
    )
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
    from rag_pipeline.core.documents.reports import document_reports, find_report

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
    from rag_pipeline.core.retrieval.facets import Facets
    from rag_pipeline.core.retrieval.filters import FilterError, compile_filter
    from rag_pipeline.core.retrieval.lexical import LexicalIndex
    from rag_pipeline.core.retrieval.search import SearchMode, search
    from rag_pipeline.core.retrieval.vector_index import IndexUnavailable, VectorIndex, connect
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.storage.catalog import Catalog

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
    every = store.registry.tenancy.collections()
    homes = [c for c in every if not args.collection or c.name in args.collection]
    scope = Facets(store.registry).scope(homes, where, everything=not args.collection)

    def run(mode: SearchMode) -> list[Any]:
        embedder, index = None, None
        if mode is not SearchMode.LEXICAL:
            embedder = get_embedder(
                settings.embedding_model,
                settings.embedding_batch_size,
                settings.endpoint_specs(),
            )
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

    from rag_pipeline.core.storage.catalog import Catalog

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
            for doc_id in store.registry.tenancy.collection_document_ids(name)
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

    mcp = sub.add_parser(
        "mcp", help="serve the MCP tools over stdio (for desktop agents); runs until stdin closes"
    )
    mcp.add_argument(
        "--api-key", help="the key the tools act as (default: RAG_MCP_API_KEY)", default=None
    )
    mcp.set_defaults(func=cmd_mcp)

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
    restore.add_argument(
        "--force",
        action="store_true",
        help="rebuild the vectors even into Chroma collections that already hold vectors "
        "(refused without it, so a restore never writes into a live index)",
    )
    restore.set_defaults(func=cmd_restore)

    cli_keys.add_parser(sub)
    cli_collections.add_parser(sub)
    cli_sources.add_parser(sub)
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
