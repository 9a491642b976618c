"""API keys: a role and the collections it may touch, with only a hash of each secret kept.

A key reads `rag_<id>_<secret>`: the id finds its row, and the SHA-256 of the whole key is
compared with the stored hash in constant time. The secret is 256 random bits, so a plain
hash is enough (a slow hash protects guessable passwords, not random keys).

Roles, each able to do what the ones below it can:
- reader: list documents, read their status, follow their events, search;
- writer: upload, replace, change metadata and delete documents;
- admin: manage collections and keys. An admin key covers every collection.

Access fails closed: a request without a valid key acts as an admin only where open access is
switched on and no key exists at all; otherwise it is refused. The last admin key cannot be
revoked unless another way in (the operator's root key) exists.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag_pipeline.core.registry import ApiKey, CollectionNotFound, Registry, Role

_RANK = {Role.reader: 0, Role.writer: 1, Role.admin: 2}
_PREFIX = "rag"


# What a refused request is told about making the first key.
FIRST_KEY_HELP = (
    "make the first admin key with `rag-pipeline keys create --role admin --name NAME` (it "
    "prints the key), or set RAG_API_KEY"
)


class InvalidKey(ValueError):
    pass


class Unauthenticated(Exception):
    """A request that carries no key this service knows. `code` says which case: `no_keys`
    when no key exists at all (and open access is off), `unauthorized` otherwise."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


# The root key (RAG_API_KEY), and a request to an open API with no key at all.
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

    def principal(self, token: str | None, root_key: str | None, open_access: bool) -> Principal:
        """Who a request with this bearer token acts as, or Unauthenticated. `root_key` is the
        operator's admin key over every collection; `open_access` lets a request without a key
        in while no key exists at all, and only then."""
        if token and root_key and hmac.compare_digest(token.encode(), root_key.encode()):
            return EVERYTHING
        if token:
            key = self.authenticate(token)
            if key is not None:
                return principal_of(key)
        if not root_key and not self.registry.tenancy.any_key():
            if open_access:
                return EVERYTHING
            raise Unauthenticated(
                "no_keys", f"no API key exists yet and open access is off: {FIRST_KEY_HELP}"
            )
        raise Unauthenticated("unauthorized", "a valid 'Authorization: Bearer <key>' is required")

    def revoke(self, key_id: str, root_key_set: bool) -> bool:
        """Revoke a key from the next request on; False if no active key has that id. The last
        admin key is refused (LastAdminKey) unless a root key is set, which stays a way in."""
        return self.registry.tenancy.revoke_key(key_id, keep_an_admin=not root_key_set)

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
