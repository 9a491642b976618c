"""API keys: a role and the collections it may touch, with only a hash of each secret kept.

A key reads `rag_<id>_<secret>`: the id finds its row, and the SHA-256 of the whole key is
compared with the stored hash in constant time. The secret is 256 random bits, so a plain
hash is enough (a slow hash protects guessable passwords, not random keys).

Roles, each able to do what the ones below it can:
- reader: list documents, read their status, follow their events, search;
- writer: upload, replace, change metadata and delete documents;
- admin: manage collections and keys. An admin key covers every collection.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag_pipeline.core.registry import ApiKey, CollectionNotFound, Registry, Role

_RANK = {Role.reader: 0, Role.writer: 1, Role.admin: 2}
_PREFIX = "rag"


class InvalidKey(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a role over some collections (None: every collection)."""

    role: Role
    collections: frozenset[str] | None
    key_id: str | None = None

    def may(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def sees(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def visible(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self.sees(name)]


# RAG_API_KEY, and a request to an API with no key configured at all.
EVERYTHING = Principal(Role.admin, None)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeysService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(
        self, name: str, role: Role, collections: Sequence[str] | None
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown once and never stored."""
        if role == Role.admin and collections is not None:
            raise InvalidKey('an admin key covers every collection: give "collections": "*"')
        if collections is not None:
            known = {c.name for c in self.registry.tenancy.collections(collections)}
            for wanted in collections:
                if wanted not in known:
                    raise CollectionNotFound(wanted)
        key_id = secrets.token_hex(6)
        token = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        names = None if collections is None else sorted(set(collections))
        return self.registry.tenancy.add_key(key_id, name, role, names, _hash(token)), token

    def authenticate(self, token: str) -> ApiKey | None:
        prefix, _, rest = token.partition("_")
        key_id, _, _ = rest.partition("_")
        if prefix != _PREFIX or not key_id:
            return None
        found = self.registry.tenancy.key_secret(key_id)
        if found is None or not hmac.compare_digest(found[1], _hash(token)):
            return None
        return found[0]


def principal_of(key: ApiKey) -> Principal:
    scope = None if key.collections is None else frozenset(key.collections)
    return Principal(key.role, scope, key.id)
