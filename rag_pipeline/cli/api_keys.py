"""`rag-pipeline keys`: make, list and revoke API keys on the registry directly, so the first
admin key of a closed API can be made on the machine that holds the registry."""

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from rag_pipeline.cli.support import EXIT_ERROR, EXIT_OK, print_json, store
from rag_pipeline.settings import Settings


def _record(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": str(key.role),
        "collections": "*" if key.collections is None else list(key.collections),
        "created_at": datetime.fromtimestamp(key.created_at, UTC).isoformat(),
    }


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.registry import CollectionNotFound, Role
    from rag_pipeline.core.tenancy.api_keys import InvalidKey, KeysService

    role = Role(args.role)
    if args.collections is None and role != Role.admin:
        print("error: a writer or reader key needs --collections (names, or '*')", file=sys.stderr)
        return EXIT_ERROR
    names = None
    if args.collections is not None and args.collections.strip() != "*":
        names = [name.strip() for name in args.collections.split(",") if name.strip()]
    keys = KeysService(store(settings).registry)
    try:
        key, secret = keys.create(args.name, role, names)
    except (InvalidKey, CollectionNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print_json({**_record(key), "secret": secret})
        return EXIT_OK
    scope = "every collection" if key.collections is None else ", ".join(key.collections)
    print(f"made {key.role} key {key.id} ({key.name!r}) over {scope}")
    print("its secret, shown this once (send it as 'Authorization: Bearer <secret>'):")
    # Alone on the last line, so `... | tail -n 1` is the key.
    print(secret)
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    for key in store(settings).registry.tenancy.active_keys():
        record = _record(key)
        if args.json:
            print_json(record)
            continue
        collections = record["collections"]
        scope = collections if isinstance(collections, str) else ",".join(collections)
        print(f"{key.id}\t{key.role}\t{key.name}\t{scope}\t{record['created_at']}")
    return EXIT_OK


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from rag_pipeline.core.registry import LastAdminKey
    from rag_pipeline.core.tenancy.api_keys import KeysService

    try:
        revoked = KeysService(store(settings).registry).revoke(
            args.id, root_key_set=bool(settings.api_key)
        )
    except LastAdminKey:
        print(
            f"refused: {args.id} is the last admin key; make another admin key first "
            "(rag-pipeline keys create --role admin --name NAME), or set RAG_API_KEY",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if not revoked:
        print(f"error: no active key with id {args.id!r}", file=sys.stderr)
        return EXIT_ERROR
    print(f"revoked {args.id}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """The `keys` command and its `create`, `list` and `revoke` subcommands."""
    keys = sub.add_parser("keys", help="make, list and revoke API keys")
    verbs = keys.add_subparsers(dest="verb", required=True)

    create = verbs.add_parser(
        "create", help="make a key; its secret is printed once, alone on the last line"
    )
    create.add_argument("--role", choices=["admin", "writer", "reader"], required=True)
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--collections",
        help="for a writer or reader key: the collections it may touch, comma-separated, or "
        "'*' for every one (an admin key covers every collection)",
    )
    create.add_argument("--json", action="store_true", help="the whole record, with the secret")
    create.set_defaults(func=cmd_keys_create)

    listing = verbs.add_parser("list", help="active keys, oldest first, without secrets")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_keys_list)

    revoke = verbs.add_parser(
        "revoke", help="revoke a key by id (the last admin key only while RAG_API_KEY is set)"
    )
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_keys_revoke)
