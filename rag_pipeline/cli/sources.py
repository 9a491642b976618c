"""`rag-pipeline sources`: a collection's buckets and web sites, as the API's
`/collections/{name}/sources` manages them: list, add, show, sync now, remove.

A bucket names the environment variables that hold its credentials (`--credentials-env
PREFIX` reads `PREFIX_ACCESS_KEY_ID` and `PREFIX_SECRET_ACCESS_KEY`); no secret is an argument.
"""

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from rag_pipeline.cli.support import EXIT_ERROR, EXIT_OK, instance, print_json, store
from rag_pipeline.settings import Settings


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _record(source: Any) -> dict[str, Any]:
    return {
        "id": source.id,
        "collection": source.collection,
        "type": source.type,
        **source.config,
        "created_at": _iso(source.created_at),
        "last_sync_at": _iso(source.last_sync_at),
        "last_counts": source.last_counts,
        "last_error": source.last_error,
    }


def _line(source: Any) -> str:
    where = source.config.get("bucket") or source.config.get("sitemap") or ""
    if source.type == "web" and not where:
        where = " ".join(source.config.get("urls") or [])
    if source.type == "s3" and source.config.get("prefix"):
        where += "/" + source.config["prefix"]
    synced = _iso(source.last_sync_at) or "never synced"
    counts = source.last_counts or {}
    seen = ", ".join(
        f"{counts[k]} {k}" for k in ("seen", "added", "changed", "retired") if k in counts
    )
    line = f"{source.id}\t{source.collection}\t{source.type}\t{where}\t{synced}"
    if seen:
        line += f"\t{seen}"
    if source.last_error:
        line += f"\terror: {source.last_error}"
    return line


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    st = store(settings)
    if st.registry.tenancy.collection(args.collection) is None:
        return _fail(f"no collection named {args.collection!r}")
    for source in st.registry.sources.of_collection(args.collection):
        if args.json:
            print_json(_record(source))
        else:
            print(_line(source))
    return EXIT_OK


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    """add-s3 and add-web: checked as the API checks them (a bucket is listed once first)."""
    from rag_pipeline.core.sources.s3 import Bucket, S3Config, SourceError
    from rag_pipeline.core.sources.web import WebConfig

    st = store(settings)
    if st.registry.tenancy.collection(args.collection) is None:
        return _fail(f"no collection named {args.collection!r}")
    config: S3Config | WebConfig
    try:
        if args.verb == "add-s3":
            config = S3Config(
                bucket=args.bucket,
                prefix=args.prefix,
                endpoint_url=args.endpoint_url,
                region=args.region,
                credentials_env=args.credentials_env,
            )
            Bucket(config, os.environ, timeout_s=10.0).probe()
            kind = "s3"
        else:
            config = WebConfig(
                urls=tuple(args.url),
                sitemap=args.sitemap,
                max_pages=args.max_pages,
                same_host_only=not args.any_host,
            )
            kind = "web"
    except SourceError as exc:
        return _fail(str(exc))
    created = st.registry.sources.create(args.collection, kind, config.to_dict())
    print(_line(created))
    return EXIT_OK


def _find(st: Any, args: argparse.Namespace) -> Any:
    found = st.registry.sources.get(args.id)
    return found if found is not None and found.collection == args.collection else None


def cmd_one(args: argparse.Namespace, settings: Settings) -> int:
    """show, sync and remove."""
    st = store(settings)
    source = _find(st, args)
    if source is None:
        return _fail(f"collection {args.collection!r} has no source {args.id!r}")
    if args.verb == "show":
        print_json(_record(source))
        return EXIT_OK
    if args.verb == "remove":
        st.registry.sources.delete(source.id)
        print(f"removed {source.id}: its documents stay in {source.collection!r}")
        return EXIT_OK
    from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
    from rag_pipeline.orchestration.sources import opener, source_sync

    index = VectorIndex(connect(settings.chroma_url), settings.chroma_collection)
    report = source_sync(instance(), st, index, settings).sync(source, opener(source, settings))
    print_json({"source": source.id, "documents": report.documents, **report.counts()})
    if report.error is not None:
        return _fail(f"the sync stopped: {report.error}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """The `sources` command and its subcommands."""
    sources = sub.add_parser("sources", help="a collection's buckets and web sites")
    verbs = sources.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="the collection's sources and their last sync")
    listing.add_argument("collection")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    s3 = verbs.add_parser("add-s3", help="keep the collection in step with a bucket")
    s3.add_argument("collection")
    s3.add_argument("bucket")
    s3.add_argument("--prefix", default="", help="only keys under this prefix")
    s3.add_argument("--endpoint-url", help="an S3-compatible server (MinIO, ...)")
    s3.add_argument("--region")
    s3.add_argument(
        "--credentials-env",
        metavar="PREFIX",
        help="read PREFIX_ACCESS_KEY_ID and PREFIX_SECRET_ACCESS_KEY from the environment",
    )
    s3.set_defaults(func=cmd_add)

    web = verbs.add_parser("add-web", help="keep the collection in step with web pages")
    web.add_argument("collection")
    web.add_argument("url", nargs="*", help="pages to keep")
    web.add_argument("--sitemap", help="a sitemap listing the pages")
    web.add_argument("--max-pages", type=int, default=100)
    web.add_argument("--any-host", action="store_true", help="follow a sitemap to other hosts")
    web.set_defaults(func=cmd_add)

    for verb, text in (
        ("show", "one source as JSON"),
        ("sync", "sync it now: register new and changed objects, retire removed ones"),
        ("remove", "stop syncing it; its documents stay"),
    ):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("collection")
        parser.add_argument("id")
        parser.set_defaults(func=cmd_one)
