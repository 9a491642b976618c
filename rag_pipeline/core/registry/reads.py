"""Reads: one document, pages in arrival order, and what the reconciler looks for."""

from collections.abc import Sequence

import sqlalchemy as sa

from rag_pipeline.core.registry.database import LIVE_VALUES, Part
from rag_pipeline.core.registry.model import Document, DocumentStatus, documents


class Reads(Part):
    def get(self, doc_id: str) -> Document | None:
        with self.db.transaction() as conn:
            return self.db.load(conn, doc_id)

    def documents(self, doc_ids: Sequence[str]) -> list[Document]:
        with self.db.transaction() as conn:
            return self.db.load_many(conn, doc_ids)

    def get_live(self, doc_id: str) -> Document | None:
        found = self.get(doc_id)
        return found if found is not None and found.live else None

    def get_row(self, doc_id: str) -> Document | None:
        """The document's row whatever its status, its stages unread (see `_row`)."""
        with self.db.transaction() as conn:
            return self.db.load_row(conn, doc_id)

    def get_live_row(self, doc_id: str) -> Document | None:
        """The live document without its stages (see `_row`): what each stage reads before
        it runs, several times per document, so one query instead of two."""
        with self.db.transaction() as conn:
            found = self.db.load_row(conn, doc_id)
        return found if found is not None and found.live else None

    def live_at_landing_path(self, landing_path: str) -> Document | None:
        """The live document last registered from this landing path."""
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(documents.c.id)
                .where(
                    documents.c.landing_path == landing_path, documents.c.status.in_(LIVE_VALUES)
                )
                .order_by(documents.c.registered_at.desc())
                .limit(1)
            ).first()
            return self.db.load(conn, row.id) if row is not None else None

    def live_landing_paths(self, landing_paths: Sequence[str]) -> set[str]:
        """Which of these landing paths a live document was registered from: one query per
        thousand paths, where the sensor would otherwise look up each taken file each tick."""
        found: set[str] = set()
        paths = list(landing_paths)
        with self.db.transaction() as conn:
            for start in range(0, len(paths), 1000):
                rows = conn.execute(
                    sa.select(documents.c.landing_path)
                    .where(
                        documents.c.landing_path.in_(paths[start : start + 1000]),
                        documents.c.status.in_(LIVE_VALUES),
                    )
                    .distinct()
                )
                found.update(row.landing_path for row in rows)
        return found

    def page(
        self,
        status: DocumentStatus | None = None,
        limit: int = 50,
        offset: int = 0,
        include_deleted: bool = True,
        collections: Sequence[str] | None = None,
    ) -> tuple[list[Document], int]:
        """Documents in arrival order, and how many match in all; `collections` None means
        every collection.

        Each shape of query has an index that gives both the order and the count: by status,
        or all in arrival order (leaving deleted ones out is a filter on that walk, and their
        count comes off the total), or by collection."""
        deleted = DocumentStatus.deleted.value
        if status is not None:
            where = [documents.c.status == status.value]
        else:
            where = [] if include_deleted else [documents.c.status != deleted]
        if collections is not None:
            where.append(documents.c.collection.in_(list(collections)))
        with self.db.transaction() as conn:

            def count(*conditions: sa.ColumnElement[bool]) -> int:
                query = sa.select(sa.func.count()).select_from(documents).where(*conditions)
                return int(conn.execute(query).scalar_one())

            if status is not None or collections is not None:
                total = count(*where)
            else:
                total = count()
                if not include_deleted:
                    total -= count(documents.c.status == deleted)
            return self.db.load_many(conn, _in_order(conn, where, limit, offset)), total

    def by_run(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """Queued or processing documents last taken on by each of these runs."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(documents.c.id, documents.c.run_id).where(
                    documents.c.run_id.in_(list(run_ids)),
                    documents.c.status == DocumentStatus.processing.value,
                )
            )
            found: dict[str, list[str]] = {}
            for row in rows:
                found.setdefault(row.run_id, []).append(row.id)
            return found

    def processing_runs(self) -> list[str]:
        with self.db.transaction() as conn:
            query = (
                sa.select(documents.c.run_id)
                .where(
                    documents.c.status == DocumentStatus.processing.value,
                    documents.c.run_id.is_not(None),
                )
                .distinct()
            )
            return [row.run_id for row in conn.execute(query)]

    def rejected_before(self, cutoff: float) -> list[str]:
        with self.db.transaction() as conn:
            query = sa.select(documents.c.id).where(
                documents.c.status == DocumentStatus.rejected.value,
                documents.c.registered_at < cutoff,
            )
            return [row.id for row in conn.execute(query)]

    def partitions_to_release(self) -> list[str]:
        with self.db.transaction() as conn:
            query = sa.select(documents.c.id).where(documents.c.release_partition.is_(True))
            return [row.id for row in conn.execute(query)]

    def submitted_after(self, since: float) -> list[str]:
        """Queued documents submitted after `since` that no run has taken on yet."""
        with self.db.transaction() as conn:
            query = sa.select(documents.c.id).where(
                documents.c.status == DocumentStatus.queued.value,
                documents.c.submitted_at > since,
                documents.c.run_id.is_(None),
            )
            return [row.id for row in conn.execute(query)]

    def submitted_between(self, start: float, end: float) -> list[str]:
        """Queued documents submitted in [start, end) that no run has taken on yet."""
        with self.db.transaction() as conn:
            query = sa.select(documents.c.id).where(
                documents.c.status == DocumentStatus.queued.value,
                documents.c.submitted_at >= start,
                documents.c.submitted_at < end,
                documents.c.run_id.is_(None),
            )
            return [row.id for row in conn.execute(query)]

    def failed(
        self,
        error_code: str | None = None,
        collection: str | None = None,
        exclude_codes: Sequence[str] = (),
        limit: int = 1000,
    ) -> tuple[list[Document], int]:
        """Failed documents in arrival order, at most `limit`, and how many failed with one of
        `exclude_codes` (left out)."""
        where = [documents.c.status == DocumentStatus.failed.value]
        if error_code is not None:
            where.append(documents.c.error_code == error_code)
        if collection is not None:
            where.append(documents.c.collection == collection)
        with self.db.transaction() as conn:
            excluded = 0
            if exclude_codes:
                excluded = int(
                    conn.execute(
                        sa.select(sa.func.count())
                        .select_from(documents)
                        .where(*where, documents.c.error_code.in_(list(exclude_codes)))
                    ).scalar_one()
                )
                where.append(
                    sa.or_(
                        documents.c.error_code.is_(None),
                        documents.c.error_code.not_in(list(exclude_codes)),
                    )
                )
            return self.db.load_many(conn, _in_order(conn, where, limit)), excluded


def _in_order(
    conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], limit: int, offset: int = 0
) -> list[str]:
    """Ids of the documents that match, in arrival order."""
    query = (
        sa.select(documents.c.id)
        .where(*where)
        .order_by(documents.c.registered_at, documents.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [row.id for row in conn.execute(query)]
