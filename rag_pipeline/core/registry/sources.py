"""Sources of a collection, their sync cursors, and how their last sync went."""

import secrets
import time
from collections.abc import Iterable

import sqlalchemy as sa

from rag_pipeline.core.registry.database import Part
from rag_pipeline.core.registry.model import (
    CollectionNotFound,
    Source,
    SourceObject,
    collections,
    source_objects,
    sources,
)


class Sources(Part):
    def create(self, collection: str, type_: str, config: dict[str, object]) -> Source:
        """A new source of a collection; raises CollectionNotFound."""
        with self.db.transaction(write=True, lock=f"collection:{collection}") as conn:
            if not conn.execute(
                sa.select(collections.c.name).where(collections.c.name == collection)
            ).first():
                raise CollectionNotFound(collection)
            source_id = f"src_{secrets.token_hex(6)}"
            conn.execute(
                sources.insert().values(
                    id=source_id,
                    collection=collection,
                    type=type_,
                    config=config,
                    created_at=time.time(),
                )
            )
            return self._load(conn, source_id)  # type: ignore[return-value]

    def get(self, source_id: str) -> Source | None:
        with self.db.transaction() as conn:
            return self._load(conn, source_id)

    def of_collection(self, collection: str | None = None) -> list[Source]:
        """The sources of a collection (or of every one), oldest first."""
        query = sa.select(sources).order_by(sources.c.created_at, sources.c.id)
        if collection is not None:
            query = query.where(sources.c.collection == collection)
        with self.db.transaction() as conn:
            return [Source.from_row(row) for row in conn.execute(query)]

    def delete(self, source_id: str) -> bool:
        with self.db.transaction(write=True) as conn:
            conn.execute(source_objects.delete().where(source_objects.c.source_id == source_id))
            return bool(conn.execute(sources.delete().where(sources.c.id == source_id)).rowcount)

    def lease(self, source_id: str, seconds: float) -> bool:
        """Hold the source for one sync: False if another sync holds it (or it is gone)."""
        now = time.time()
        with self.db.transaction(write=True, lock=f"source:{source_id}") as conn:
            taken = conn.execute(
                sources.update()
                .where(sources.c.id == source_id)
                .where(sa.or_(sources.c.lease_until.is_(None), sources.c.lease_until < now))
                .values(lease_until=now + seconds)
            )
            return bool(taken.rowcount)

    def finish(self, source_id: str, counts: dict[str, int], error: str | None) -> None:
        """Record how a sync went, and let the source go."""
        with self.db.transaction(write=True) as conn:
            conn.execute(
                sources.update()
                .where(sources.c.id == source_id)
                .values(
                    lease_until=None,
                    last_sync_at=time.time(),
                    last_counts=counts,
                    last_error=error,
                )
            )

    def objects(self, source_id: str) -> dict[str, SourceObject]:
        """The cursor: each object as last taken, by key."""
        query = sa.select(source_objects).where(source_objects.c.source_id == source_id)
        with self.db.transaction() as conn:
            return {
                row.key: SourceObject(
                    key=row.key,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    version=row.version,
                    document_id=row.document_id,
                    error=row.error,
                )
                for row in conn.execute(query)
            }

    def record(self, source_id: str, taken: SourceObject) -> None:
        """An object as it was just taken, in place of what the cursor held for its key."""
        with self.db.transaction(write=True) as conn:
            conn.execute(
                source_objects.delete().where(
                    source_objects.c.source_id == source_id, source_objects.c.key == taken.key
                )
            )
            conn.execute(
                source_objects.insert().values(
                    source_id=source_id,
                    key=taken.key,
                    etag=taken.etag,
                    last_modified=taken.last_modified,
                    version=taken.version,
                    document_id=taken.document_id,
                    error=taken.error,
                )
            )

    def forget(self, source_id: str, keys: Iterable[str]) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute(
                source_objects.delete().where(
                    source_objects.c.source_id == source_id, source_objects.c.key.in_(list(keys))
                )
            )

    def _load(self, conn: sa.Connection, source_id: str) -> Source | None:
        row = conn.execute(sa.select(sources).where(sources.c.id == source_id)).first()
        return Source.from_row(row) if row is not None else None
