"""Collections, API keys and documents' metadata: who owns what, and what it is labelled."""

import secrets
import time
from collections.abc import Collection as Collection_
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from rag_pipeline.core.registry.database import LIVE_VALUES, Part
from rag_pipeline.core.registry.model import (
    ApiKey,
    Collection,
    Document,
    LastAdminKey,
    Role,
    api_keys,
    collections,
    documents,
    switch_documents,
)


@dataclass(frozen=True)
class Facet:
    """What search filters and scopes by, for one document."""

    id: str
    collection: str
    filename: str | None
    media_type: str | None
    metadata: dict[str, Any]
    live: bool
    updated_at: float
    registered_at: float
    status: str


class Tenancy(Part):
    # Collections.

    def create_collection(
        self,
        name: str,
        description: str = "",
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        embedding_model: str | None = None,
    ) -> Collection | None:
        """A new collection, or None if one of that name exists."""
        now = time.time()
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            if conn.execute(
                sa.select(collections.c.name).where(collections.c.name == name)
            ).first():
                return None
            made = Collection(
                name=name,
                description=description,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                index_token=secrets.token_hex(4),
                created_at=now,
                updated_at=now,
                embedding_model=embedding_model,
            )
            conn.execute(collections.insert().values(**asdict(made)))
            return made

    def collection(self, name: str) -> Collection | None:
        with self.db.transaction() as conn:
            row = conn.execute(sa.select(collections).where(collections.c.name == name)).first()
            return Collection.from_row(row) if row is not None else None

    def collections(self, names: Collection_[str] | None = None) -> list[Collection]:
        """Every collection (or those of `names` that exist), by name."""
        query = sa.select(collections).order_by(collections.c.name)
        if names is not None:
            query = query.where(collections.c.name.in_(list(names)))
        with self.db.transaction() as conn:
            return [Collection.from_row(row) for row in conn.execute(query)]

    def update_collection(self, name: str, **changes: Any) -> Collection | None:
        with self.db.transaction(write=True) as conn:
            result = conn.execute(
                collections.update()
                .where(collections.c.name == name)
                .values(**changes, updated_at=time.time())
            )
            if not result.rowcount:
                return None
            row = conn.execute(sa.select(collections).where(collections.c.name == name)).first()
            return Collection.from_row(row)

    def live_counts(self) -> dict[str, int]:
        """Live documents per collection."""
        query = (
            sa.select(documents.c.collection, sa.func.count())
            .where(documents.c.status.in_(LIVE_VALUES))
            .group_by(documents.c.collection)
        )
        with self.db.transaction() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    def status_counts(self) -> dict[str, dict[str, int]]:
        """Documents per collection and status, deleted ones left out (one grouped query, so a
        collections page stays one round trip at any size)."""
        query = (
            sa.select(documents.c.collection, documents.c.status, sa.func.count())
            .where(documents.c.status != "deleted")
            .group_by(documents.c.collection, documents.c.status)
        )
        counts: dict[str, dict[str, int]] = {}
        with self.db.transaction() as conn:
            for collection, status, count in conn.execute(query):
                counts.setdefault(collection, {})[status] = int(count)
        return counts

    def homeless(self) -> list[str]:
        """Live documents whose collection is gone (a collection delete that stopped part-way)."""
        query = sa.select(documents.c.id).where(
            documents.c.status.in_(LIVE_VALUES),
            documents.c.collection.not_in(sa.select(collections.c.name)),
        )
        with self.db.transaction() as conn:
            return [row.id for row in conn.execute(query)]

    def collection_document_ids(self, name: str) -> list[str]:
        """Every document row of a collection, whatever its status, in arrival order."""
        query = (
            sa.select(documents.c.id)
            .where(documents.c.collection == name)
            .order_by(documents.c.registered_at, documents.c.id)
        )
        with self.db.transaction() as conn:
            return [row.id for row in conn.execute(query)]

    def remove_collection(self, name: str) -> None:
        """Forget a collection whose documents are gone: its row, its name on keys, and the rows
        of its documents, but for those whose partition is still to be removed (they go once it
        is, see `partition_released`)."""
        with self.db.transaction(write=True) as conn:
            conn.execute(collections.delete().where(collections.c.name == name))
            conn.execute(switch_documents.delete().where(switch_documents.c.collection == name))
            conn.execute(
                documents.delete().where(
                    documents.c.collection == name,
                    documents.c.status.not_in(LIVE_VALUES),
                    documents.c.release_partition.is_(False),
                )
            )
            for row in conn.execute(sa.select(api_keys).where(api_keys.c.collections.is_not(None))):
                names = list(row.collections or [])
                if name in names:
                    names.remove(name)
                    conn.execute(
                        api_keys.update().where(api_keys.c.id == row.id).values(collections=names)
                    )

    # Metadata, and what search looks at.

    def set_metadata(self, doc_id: str, metadata: dict[str, Any]) -> Document | None:
        """Replace a live document's metadata; None if it is not live."""
        with self.db.transaction(write=True) as conn:
            result = conn.execute(
                documents.update()
                .where(documents.c.id == doc_id, documents.c.status.in_(LIVE_VALUES))
                .values(metadata=metadata, updated_at=time.time())
            )
            return self.db.load(conn, doc_id) if result.rowcount else None

    def last_change(self) -> float:
        """When any document last changed (from the index on updated_at)."""
        with self.db.transaction() as conn:
            return float(conn.execute(sa.select(sa.func.max(documents.c.updated_at))).scalar() or 0)

    def facets_since(self, since: float) -> list[Facet]:
        """Documents changed at or after `since`, as search sees them."""
        query = sa.select(
            documents.c.id,
            documents.c.collection,
            documents.c.filename,
            documents.c.media_type,
            documents.c.metadata,
            documents.c.status,
            documents.c.updated_at,
            documents.c.registered_at,
        ).where(documents.c.updated_at >= since)
        live = set(LIVE_VALUES)
        with self.db.transaction() as conn:
            return [
                Facet(
                    row.id,
                    row.collection,
                    row.filename,
                    row.media_type,
                    row.metadata or {},
                    row.status in live,
                    row.updated_at,
                    row.registered_at,
                    row.status,
                )
                for row in conn.execute(query)
            ]

    # API keys: only a hash of each secret is kept.

    def add_key(
        self,
        key_id: str,
        name: str,
        role: Role,
        collections_: Sequence[str] | None,
        secret_sha256: str,
    ) -> ApiKey:
        values = {
            "id": key_id,
            "name": name,
            "role": role.value,
            "collections": None if collections_ is None else list(collections_),
            "secret_sha256": secret_sha256,
            "created_at": time.time(),
            "revoked_at": None,
        }
        with self.db.transaction(write=True) as conn:
            conn.execute(api_keys.insert().values(**values))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
            return ApiKey.from_row(row)

    def key_secret(self, key_id: str) -> tuple[ApiKey, str] | None:
        """An active key and its secret's hash."""
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            ).first()
            return (ApiKey.from_row(row), row.secret_sha256) if row is not None else None

    def active_keys(self) -> list[ApiKey]:
        """Active keys, oldest first."""
        query = (
            sa.select(api_keys)
            .where(api_keys.c.revoked_at.is_(None))
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        with self.db.transaction() as conn:
            return [ApiKey.from_row(row) for row in conn.execute(query)]

    def any_key(self) -> bool:
        with self.db.transaction() as conn:
            query = sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)
            return conn.execute(query).first() is not None

    def revoke_key(self, key_id: str, keep_an_admin: bool = False) -> bool:
        """Revoke an active key; False if there is none of that id. With `keep_an_admin`, the
        only active admin key is refused (LastAdminKey), checked and revoked in one
        transaction so two revocations at once cannot both pass the check."""
        active = api_keys.c.revoked_at.is_(None)
        with self.db.transaction(write=True, lock="api_keys") as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id, active)).first()
            if row is None:
                return False
            if keep_an_admin and row.role == Role.admin.value:
                others = sa.select(api_keys.c.id).where(
                    active, api_keys.c.role == Role.admin.value, api_keys.c.id != key_id
                )
                if conn.execute(others.limit(1)).first() is None:
                    raise LastAdminKey(key_id)
            conn.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=time.time())
            )
            return True
