"""`rag-pipeline collections`: list and show collections with their model, index generation and
any model switch under way; switch a collection's model, retry or cancel the switch."""

import argparse
import sys
from typing import Any

from rag_pipeline.cli.support import EXIT_ERROR, EXIT_OK, instance, print_json, store
from rag_pipeline.settings import Settings


def _record(found: Any, st: Any, settings: Settings) -> dict[str, Any]:
    progress = st.registry.switches.progress(found)
    return {
        "name": found.name,
        "embedding_model": found.model(settings.embedding_model),
        "generation": found.generation,
        "documents": st.registry.tenancy.live_counts().get(found.name, 0),
        "model_switch": None
        if progress is None
        else {
            "embedding_model": progress.model,
            "generation": progress.generation,
            "documents_done": progress.done,
            "documents_total": progress.total,
            "failed": [vars(f) for f in progress.failed],
        },
    }


def _line(record: dict[str, Any]) -> str:
    line = (
        f"{record['name']}\t{record['embedding_model']}\tgeneration {record['generation']}\t"
        f"{record['documents']} documents"
    )
    switch = record["model_switch"]
    if switch:
        line += (
            f"\tswitching to {switch['embedding_model']}: {switch['documents_done']}/"
            f"{switch['documents_total']} done, {len(switch['failed'])} failed"
        )
    return line


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    st = store(settings)
    for found in st.registry.tenancy.collections():
        record = _record(found, st, settings)
        if args.json:
            print_json(record)
        else:
            print(_line(record))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    st = store(settings)
    found = st.registry.tenancy.collection(args.name)
    if found is None:
        print(f"error: no collection named {args.name!r}", file=sys.stderr)
        return EXIT_ERROR
    print_json(_record(found, st, settings))
    return EXIT_OK


def cmd_switch(args: argparse.Namespace, settings: Settings) -> int:
    """set-model, retry-switch and cancel-switch."""
    from rag_pipeline.core.registry import CollectionNotFound
    from rag_pipeline.core.registry.switches import SwitchConflict
    from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
    from rag_pipeline.core.stages.embedders import ModelUnavailable
    from rag_pipeline.orchestration.resources import api_holder_id
    from rag_pipeline.orchestration.runs import switches

    st = store(settings)
    index = VectorIndex(connect(settings.chroma_url), settings.chroma_collection)
    holder = api_holder_id()
    try:
        if args.verb == "cancel-switch":
            kept = switches.cancel(instance(), st, args.name, holder, index)
            print(f"cancelled: {args.name} stays on {kept.model(settings.embedding_model)}")
            return EXIT_OK
        if args.verb == "set-model":
            settings.chunk_defaults(args.model)
            launched = switches.start(
                instance(), st, args.name, args.model, settings.embedding_model, holder, index
            )
        else:
            launched = switches.retry(instance(), st, args.name, holder, index)
    except (CollectionNotFound, SwitchConflict, ModelUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if launched.backfill_id is not None:
        print(
            f"backfill {launched.backfill_id}: {launched.documents} documents of collection "
            f"{args.name!r} to re-embed; the daemon runs it (Dagster UI: Overview > Backfills)"
        )
    print(_line(_record(launched.collection, st, settings)))
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """The `collections` command and its subcommands."""
    collections = sub.add_parser("collections", help="collections, their models and model switches")
    verbs = collections.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser(
        "list", help="every collection: model, generation, documents, any switch under way"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)
    show = verbs.add_parser("show", help="one collection as JSON, with its switch's progress")
    show.add_argument("name")
    show.set_defaults(func=cmd_show)
    set_model = verbs.add_parser(
        "set-model",
        help="switch to another embedding model: a backfill re-embeds the collection into a "
        "new index generation while search serves the current one",
    )
    set_model.add_argument("name")
    set_model.add_argument("model", help="one of GET /embedding-models")
    set_model.set_defaults(func=cmd_switch)
    for verb, text in (
        ("retry-switch", "re-embed what the switch still lacks (documents that failed)"),
        ("cancel-switch", "abandon the switch and remove its partial generation"),
    ):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("name")
        parser.set_defaults(func=cmd_switch)
