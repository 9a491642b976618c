"""Model switches: a collection's pending index generation, what has been written to it, and
the swap that makes it the one search serves."""

import time
from collections.abc import Collection as Collection_
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from rag_pipeline.core.registry.database import Part
from rag_pipeline.core.registry.model import (
    Collection,
    CollectionNotFound,
    DocumentStatus,
    collections,
    documents,
    stages,
    switch_documents,
)

# The documents a switch must carry over: live ones that have, or are on their way to, vectors
# (a document whose ingestion failed has none in either generation).
CARRIED = [
    s.value for s in (DocumentStatus.queued, DocumentStatus.processing, DocumentStatus.indexed)
]


class SwitchConflict(RuntimeError):
    """A switch cannot start (one is under way) or cannot be acted on (none is)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SwitchFailure:
    document_id: str
    code: str
    message: str


@dataclass(frozen=True)
class SwitchProgress:
    """How far a collection's pending generation has got."""

    model: str
    generation: int
    total: int
    done: int
    failed: list[SwitchFailure] = field(default_factory=list)


class Switches(Part):
    def start(self, name: str, model: str, current: str) -> Collection:
        """Make `model` the collection's pending model, in a new generation; `current` is its
        active model (for the no-op check)."""
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            row = conn.execute(sa.select(collections).where(collections.c.name == name)).first()
            if row is None:
                raise CollectionNotFound(name)
            found = Collection.from_row(row)
            if found.pending_model is not None:
                raise SwitchConflict(
                    "model_switch_pending",
                    f"collection {name!r} is already switching to {found.pending_model!r}: "
                    "wait for it, retry it or cancel it",
                )
            if model == current:
                raise SwitchConflict(
                    "same_embedding_model", f"collection {name!r} already uses {model!r}"
                )
            generation = max(found.generation, found.last_generation) + 1
            conn.execute(switch_documents.delete().where(switch_documents.c.collection == name))
            conn.execute(
                collections.update()
                .where(collections.c.name == name)
                .values(
                    pending_model=model,
                    pending_generation=generation,
                    last_generation=generation,
                    updated_at=time.time(),
                )
            )
            return Collection.from_row(
                conn.execute(sa.select(collections).where(collections.c.name == name)).one()
            )

    def record(
        self,
        name: str,
        generation: int,
        done: Mapping[str, dict[str, Any]] | None = None,
        failed: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """Documents written to the pending generation (with their chunk_embeddings metadata)
        or failed for it; nothing if that generation is no longer pending (cancelled, or
        swapped already)."""
        now = time.time()
        rows: list[tuple[str, str, str | None, str | None, dict[str, Any] | None]] = [
            (doc_id, "done", None, None, meta) for doc_id, meta in (done or {}).items()
        ]
        rows += [
            (doc_id, "failed", code, msg, None) for doc_id, (code, msg) in (failed or {}).items()
        ]
        if not rows:
            return
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            pending = conn.execute(
                sa.select(collections.c.pending_generation).where(collections.c.name == name)
            ).scalar()
            if pending != generation:
                return
            ids = [r[0] for r in rows]
            conn.execute(
                switch_documents.delete().where(
                    switch_documents.c.collection == name,
                    switch_documents.c.generation == generation,
                    switch_documents.c.document_id.in_(ids),
                )
            )
            conn.execute(
                switch_documents.insert(),
                [
                    {
                        "collection": name,
                        "generation": generation,
                        "document_id": doc_id,
                        "state": state,
                        "error_code": code,
                        "error_message": message,
                        "metadata": meta,
                        "at": now,
                    }
                    for doc_id, state, code, message, meta in rows
                ],
            )

    def progress(self, collection: Collection) -> SwitchProgress | None:
        if collection.pending_model is None or collection.pending_generation is None:
            return None
        carried = sa.select(documents.c.id).where(
            documents.c.collection == collection.name, documents.c.status.in_(CARRIED)
        )
        own = sa.select(switch_documents).where(
            switch_documents.c.collection == collection.name,
            switch_documents.c.generation == collection.pending_generation,
            switch_documents.c.document_id.in_(carried),
        )
        with self.db.transaction() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(carried.subquery()))
            rows = list(conn.execute(own))
            return SwitchProgress(
                model=collection.pending_model,
                generation=collection.pending_generation,
                total=int(total.scalar() or 0),
                done=sum(1 for r in rows if r.state == "done"),
                failed=[
                    SwitchFailure(r.document_id, r.error_code or "", r.error_message or "")
                    for r in rows
                    if r.state == "failed"
                ],
            )

    def restart(self, name: str) -> None:
        """Forget what the pending generation holds (it was not restored with a backup)."""
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            conn.execute(switch_documents.delete().where(switch_documents.c.collection == name))

    def unfinished(self, name: str) -> list[str]:
        """The documents the pending generation still needs, in arrival order."""
        with self.db.transaction() as conn:
            pending = conn.execute(
                sa.select(collections.c.pending_generation).where(collections.c.name == name)
            ).scalar()
            if pending is None:
                return []
            return [row.id for row in conn.execute(self._missing(name, pending))]

    def complete(
        self, name: str, generation: int, settled: Collection_[str] = ()
    ) -> Collection | None:
        """Swap, in one transaction, if every carried document is in the pending generation
        and none is queued or processing (a run under way embeds with the model it started
        with), but those of `settled` (the calling step's own, written to both generations):
        the collection serves the new generation from then on. Returns the collection as it
        was before (whose old generation is the caller's to remove), or None if the switch is
        not complete (or that generation is no longer pending)."""
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            row = conn.execute(sa.select(collections).where(collections.c.name == name)).first()
            if row is None or row.pending_generation != generation:
                return None
            if conn.execute(self._missing(name, generation).limit(1)).first() is not None:
                return None
            in_flight = sa.select(documents.c.id).where(
                documents.c.collection == name,
                documents.c.status.in_(
                    [DocumentStatus.queued.value, DocumentStatus.processing.value]
                ),
                documents.c.id.not_in(list(settled)),
            )
            if conn.execute(in_flight.limit(1)).first() is not None:
                return None
            conn.execute(
                collections.update()
                .where(collections.c.name == name)
                .values(
                    embedding_model=row.pending_model,
                    generation=generation,
                    pending_model=None,
                    pending_generation=None,
                    updated_at=time.time(),
                )
            )
            # Each document's chunk_embeddings stage shows the model its vectors now come from.
            written = conn.execute(
                sa.select(switch_documents.c.document_id, switch_documents.c.metadata).where(
                    switch_documents.c.collection == name,
                    switch_documents.c.generation == generation,
                    switch_documents.c.metadata.is_not(None),
                )
            )
            for doc_id, meta in written:
                conn.execute(
                    stages.update()
                    .where(stages.c.document_id == doc_id, stages.c.stage == "chunk_embeddings")
                    .values(metadata=meta)
                )
            conn.execute(switch_documents.delete().where(switch_documents.c.collection == name))
            return Collection.from_row(row)

    def cancel(self, name: str) -> Collection:
        """Abandon the pending switch; returns the collection as it was (whose pending
        generation is the caller's to remove)."""
        with self.db.transaction(write=True, lock=f"collection:{name}") as conn:
            row = conn.execute(sa.select(collections).where(collections.c.name == name)).first()
            if row is None:
                raise CollectionNotFound(name)
            if row.pending_model is None:
                raise SwitchConflict(
                    "no_model_switch", f"collection {name!r} has no model switch under way"
                )
            conn.execute(
                collections.update()
                .where(collections.c.name == name)
                .values(pending_model=None, pending_generation=None, updated_at=time.time())
            )
            conn.execute(switch_documents.delete().where(switch_documents.c.collection == name))
            return Collection.from_row(row)

    @staticmethod
    def _missing(name: str, generation: int) -> sa.Select[tuple[str]]:
        done = sa.select(switch_documents.c.document_id).where(
            switch_documents.c.collection == name,
            switch_documents.c.generation == generation,
            switch_documents.c.state == "done",
        )
        return (
            sa.select(documents.c.id)
            .where(
                documents.c.collection == name,
                documents.c.status.in_(CARRIED),
                documents.c.id.not_in(done),
            )
            .order_by(documents.c.registered_at, documents.c.id)
        )
