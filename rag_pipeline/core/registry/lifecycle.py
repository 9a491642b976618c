"""Registration, pickup and the end of a document's life."""

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from rag_pipeline.core.registry.database import LIVE_VALUES, Part
from rag_pipeline.core.registry.model import (
    DEFAULT_COLLECTION,
    CollectionNotFound,
    Document,
    DocumentStatus,
    collections,
    documents,
    fresh_row,
    stages,
)


class Lifecycle(Part):
    def register(
        self,
        doc_id: str,
        *,
        filename: str,
        sha256: str,
        size: int,
        origin: str,
        source_path: str,
        media_type: str | None = None,
        landing_path: str | None = None,
        supersedes: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict[str, Any] | None = None,
        dedupe_by_content: bool = False,
        submitted: bool = False,
    ) -> tuple[Document, bool]:
        """Register a document, or return the live one it already is: (document, created).

        With `dedupe_by_content`, a live document holding the same bytes under any name in the
        same collection is the answer. A live id is the answer whatever its collection (an id
        names one document). A deleted or rejected id registered again starts a new life.
        """
        now = time.time()
        with self.db.transaction(write=True, lock=f"sha:{sha256}") as conn:
            # In the transaction: a collection deleted meanwhile takes no new document.
            if not conn.execute(
                sa.select(collections.c.name).where(collections.c.name == collection)
            ).first():
                raise CollectionNotFound(collection)
            if dedupe_by_content:
                same = conn.execute(
                    sa.select(documents.c.id)
                    .where(documents.c.sha256 == sha256, documents.c.status.in_(LIVE_VALUES))
                    .where(documents.c.collection == collection)
                    .order_by(documents.c.registered_at)
                    .limit(1)
                ).first()
                if same is not None:
                    return self.db.load(conn, same.id), False  # type: ignore[return-value]
            existing = self.db.load_row(conn, doc_id)
            if existing is not None and existing.live:
                return self.db.load(conn, doc_id), False  # type: ignore[return-value]
            if supersedes is not None:
                old = self.db.load_row(conn, supersedes)
                supersedes = supersedes if old is not None and old.live else None
            values = fresh_row(
                now,
                collection=collection,
                filename=filename,
                sha256=sha256,
                media_type=media_type,
                bytes=size,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                metadata=metadata or {},
                origin=origin,
                source_path=source_path,
                landing_path=landing_path,
                supersedes=supersedes,
                # Submitted by its caller (the CLI adds the partition itself): long ago, as far
                # as pickup is concerned.
                submitted_at=0.0 if submitted else None,
            )
            if existing is None:
                conn.execute(documents.insert().values(id=doc_id, **values))
            else:
                conn.execute(stages.delete().where(stages.c.document_id == doc_id))
                conn.execute(documents.update().where(documents.c.id == doc_id).values(**values))
            # A new life has no stages yet: the row is the whole document.
            return self.db.load_row(conn, doc_id), True  # type: ignore[return-value]

    def reject(
        self,
        doc_id: str,
        *,
        filename: str,
        code: str,
        message: str,
        origin: str,
        landing_path: str | None = None,
        source_path: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        collection: str = DEFAULT_COLLECTION,
    ) -> Document:
        """Record a file that never became a document, unless the id is live already."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            existing = self.db.load(conn, doc_id)
            if existing is not None and existing.live:
                return existing
            values = {
                "collection": collection,
                "filename": filename,
                "sha256": sha256,
                "bytes": size,
                "origin": origin,
                "source_path": source_path,
                "landing_path": landing_path,
                "registered_at": now,
                "status": DocumentStatus.rejected.value,
                "error_stage": "landing",
                "error_code": code,
                "error_message": message,
                "updated_at": now,
                "deleted_at": None,
            }
            if existing is None:
                conn.execute(documents.insert().values(id=doc_id, **values))
            else:
                conn.execute(stages.delete().where(stages.c.document_id == doc_id))
                conn.execute(documents.update().where(documents.c.id == doc_id).values(**values))
            return self.db.load(conn, doc_id)  # type: ignore[return-value]

    def retire(self, doc_id: str, reason: str, superseded_by: str | None = None) -> Document | None:
        """Mark a live document deleted; returns it as it was, or None if it was not live."""
        now = time.time()
        with self.db.transaction(write=True) as conn:
            found = self.db.load(conn, doc_id)
            if found is None or not found.live:
                return None
            conn.execute(
                documents.update()
                .where(documents.c.id == doc_id)
                .values(
                    status=DocumentStatus.deleted.value,
                    deleted_at=now,
                    delete_reason=reason,
                    superseded_by=superseded_by,
                    release_partition=True,
                    updated_at=now,
                )
            )
            return found

    def partition_released(self, doc_id: str) -> None:
        """The partition is gone; so is the row, when its collection was deleted."""
        with self.db.transaction(write=True) as conn:
            conn.execute(
                documents.update()
                .where(documents.c.id == doc_id, documents.c.status == DocumentStatus.deleted.value)
                .values(release_partition=False)
            )
            conn.execute(
                documents.delete().where(
                    documents.c.id == doc_id,
                    documents.c.status == DocumentStatus.deleted.value,
                    documents.c.collection.not_in(sa.select(collections.c.name)),
                )
            )

    def forget(self, doc_id: str) -> bool:
        """Remove a rejected file's row: nothing of it is left to show."""
        with self.db.transaction(write=True) as conn:
            result = conn.execute(
                documents.delete().where(
                    documents.c.id == doc_id, documents.c.status == DocumentStatus.rejected.value
                )
            )
            return bool(result.rowcount)

    # Pickup: documents registered but not yet partitions with a run.

    def claim_for_pickup(
        self, now: float, again: Sequence[str] = (), limit: int = 10_000
    ) -> list[Document]:
        """Live documents waiting for a partition and a run, marked submitted at `now`, in
        arrival order; `again` names submitted ones whose submission was lost.

        One transaction: a delete that commits first withdraws the document; one that commits
        after finds it submitted, and its run drops it.
        """
        with self.db.transaction(write=True) as conn:
            waiting: sa.ColumnElement[bool] = documents.c.submitted_at.is_(None)
            if again:
                waiting = sa.or_(waiting, documents.c.id.in_(list(again)))
            rows = conn.execute(
                sa.select(documents)
                .where(documents.c.status == DocumentStatus.queued.value, waiting)
                .order_by(documents.c.registered_at, documents.c.id)
                .limit(limit)
            ).all()
            ids = [row.id for row in rows]
            if ids:
                conn.execute(
                    documents.update().where(documents.c.id.in_(ids)).values(submitted_at=now)
                )
            return [Document.from_row(row) for row in rows]

    def unclaim(self, doc_ids: Sequence[str]) -> None:
        """Submitted documents whose partition never appeared: pick them up again."""
        with self.db.transaction(write=True) as conn:
            conn.execute(
                documents.update()
                .where(
                    documents.c.id.in_(list(doc_ids)),
                    documents.c.status == DocumentStatus.queued.value,
                )
                .values(submitted_at=None)
            )

    def requeue(
        self,
        assignments: dict[str, str],
        expect: Sequence[DocumentStatus],
        options: dict[str, int | None] | None = None,
    ) -> set[str]:
        """Queue documents for the runs asked for them again (id -> run id), the ones whose
        status is still one of `expect`; `options` (chunk_size, chunk_overlap) replace theirs
        where given. Returns the ids queued."""
        now = time.time()
        values = {k: v for k, v in (options or {}).items() if v is not None}
        taken: set[str] = set()
        with self.db.transaction(write=True) as conn:
            for doc_id, run_id in assignments.items():
                result = conn.execute(
                    documents.update()
                    .where(
                        documents.c.id == doc_id,
                        documents.c.status.in_([status.value for status in expect]),
                    )
                    .values(
                        status=DocumentStatus.queued.value,
                        run_id=run_id,
                        updated_at=now,
                        **values,
                    )
                )
                if result.rowcount:
                    taken.add(doc_id)
        return taken
