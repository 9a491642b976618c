"""Switching a collection's embedding model with no downtime.

A switch writes a new index generation (its own Chroma collection, `Collection.pending_suffix`)
while search keeps serving the active one. Each document's chunks are embedded with the new
model into the `pending_embeddings` artifact, then written to the pending generation; its
registry row records it done, or failed with a code. Once every carried document (live, and
not failed at ingestion) is done, one registry transaction makes the pending generation the
active one; the old generation's Chroma collection goes afterwards, and the pending
embeddings become the document's embeddings.

Chunks are shared by both generations (search joins chunk text by vector id), so a switch
does not re-chunk: a document whose chunks exceed the new model's input limit fails with
`rechunk_required`, and the switch waits (or is cancelled) with the old generation serving.
"""

import os
from collections.abc import Callable, Sequence
from typing import Any

from rag_pipeline.core.documents.service import Partitions
from rag_pipeline.core.registry import DEFAULT_COLLECTION, Collection, CollectionNotFound
from rag_pipeline.core.registry.switches import SwitchConflict, SwitchProgress
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.stages import indexing, ingest
from rag_pipeline.core.stages.embedders import Embedder
from rag_pipeline.core.stages.ingest import StageError, StageResult
from rag_pipeline.core.storage import catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

PENDING = "pending_embeddings"

__all__ = ["ModelSwitch", "SwitchConflict", "SwitchProgress"]


class ModelSwitch:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.registry = store.registry

    def start(self, name: str, model: str, default_model: str) -> Collection:
        """Begin switching to `model` (known to be available); raises SwitchConflict when a
        switch is under way or the collection uses that model already."""
        current = self.registry.tenancy.collection(name)
        if current is None:
            raise CollectionNotFound(name)
        return self.registry.switches.start(name, model, current.model(default_model))

    def progress(self, collection: Collection) -> SwitchProgress | None:
        return self.registry.switches.progress(collection)

    def pending(self, doc_ids: Sequence[str]) -> dict[int, tuple[Collection, list[str]]]:
        """The documents whose collection is switching, by pending generation."""
        homes = {doc.id: doc.collection for doc in self.registry.reads.documents(doc_ids)}
        switching = {
            c.name: c
            for c in self.registry.tenancy.collections(set(homes.values()))
            if c.pending_generation is not None
        }
        found: dict[int, tuple[Collection, list[str]]] = {}
        for doc_id in doc_ids:
            home = switching.get(homes.get(doc_id, ""))
            if home is not None and home.pending_generation is not None:
                found.setdefault(home.pending_generation, (home, []))[1].append(doc_id)
        return found

    def embed(
        self,
        doc_ids: Sequence[str],
        model: Embedder,
        before_slice: Callable[[], None] = lambda: None,
    ) -> dict[str, StageResult | StageError]:
        """The documents' chunks embedded with the pending model, into `pending_embeddings`;
        a document whose chunks the model cannot take whole fails with `rechunk_required`."""
        outcomes: dict[str, StageResult | StageError] = {}
        fits = []
        for doc_id in doc_ids:
            if not self.store.artifact_path("chunks", doc_id).exists():
                outcomes[doc_id] = StageError(
                    "missing_upstream", "document_chunks has not been materialized"
                )
                continue
            longest = max((c.tokens for c in catalog.read_chunks(self.store, doc_id)), default=0)
            if longest > model.max_tokens:
                outcomes[doc_id] = StageError(
                    "rechunk_required",
                    f"a chunk holds {longest} tokens, over {model.model_name}'s limit of "
                    f"{model.max_tokens}: reprocess the collection with a smaller chunk size",
                )
                continue
            fits.append(doc_id)
        return outcomes | ingest.chunk_embeddings(
            self.store, fits, model, before_slice=before_slice, kind=PENDING
        )

    def index(
        self, collection: Collection, doc_ids: Sequence[str], root: VectorIndex
    ) -> dict[str, StageResult | StageError]:
        """Write the documents' pending embeddings to the pending generation (the caller holds
        the index-write pool) and record which are done."""
        if collection.pending_suffix is None or collection.pending_generation is None:
            raise SwitchConflict("no_model_switch", f"{collection.name!r} is not switching")
        target = root.of(collection.pending_suffix)
        outcomes: dict[str, StageResult | StageError] = {}
        for group in indexing.index_inputs(self.store, doc_ids, kind=PENDING):
            ready = [item for item in group if isinstance(item, indexing.IndexInput)]
            outcomes.update(item for item in group if not isinstance(item, indexing.IndexInput))
            written = target.replace_documents([item.vectors for item in ready])
            for item in ready:
                upserted, deleted = written[item.doc_id]
                outcomes[item.doc_id] = StageResult(
                    {
                        "vectors": upserted,
                        "chunks": len(item.chunks),
                        "stale_deleted": deleted,
                        "collection": collection.name,
                        "vector_collection": target.name,
                        "model": item.model or "",
                        "generation": collection.pending_generation,
                    }
                )
        return outcomes

    def record(
        self,
        collection: Collection,
        embedded: dict[str, StageResult | StageError],
        indexed: dict[str, StageResult | StageError],
    ) -> None:
        """Each document done (embedded and indexed) or failed, with why."""
        if collection.pending_generation is None:
            return
        done: dict[str, dict[str, Any]] = {}
        failed: dict[str, tuple[str, str]] = {}
        for doc_id, outcome in (embedded | indexed).items():
            if isinstance(outcome, StageError):
                failed[doc_id] = (outcome.code, outcome.message)
            elif doc_id in indexed:
                first = embedded[doc_id]
                done[doc_id] = first.metadata if isinstance(first, StageResult) else {}
        self.registry.switches.record(
            collection.name, collection.pending_generation, done=done, failed=failed
        )

    def finish(
        self,
        name: str,
        generation: int,
        root: VectorIndex,
        partitions: Partitions,
        settled: Sequence[str] = (),
    ) -> Collection | None:
        """Swap if the pending generation is complete (see `Switches.complete`), then remove
        the old one; returns the collection as it now is, or None if it was not complete."""
        old = self.registry.switches.complete(name, generation, settled)
        if old is None:
            return None
        doc_ids = self.registry.tenancy.collection_document_ids(name)
        for doc_id in doc_ids:
            pending = self.store.artifact_path(PENDING, doc_id)
            if pending.exists():
                os.replace(pending, self.store.artifact_path("embeddings", doc_id))
        with partitions.index_write("model switch: remove the old generation"):
            remove_generation(root, old.index_suffix, doc_ids)
        return self.registry.tenancy.collection(name)

    def cancel(self, name: str, root: VectorIndex, partitions: Partitions) -> Collection:
        """Abandon the switch and remove its partial generation."""
        before = self.registry.switches.cancel(name)
        doc_ids = self.registry.tenancy.collection_document_ids(name)
        for doc_id in doc_ids:
            self.store.artifact_path(PENDING, doc_id).unlink(missing_ok=True)
        if before.pending_suffix is not None:
            with partitions.index_write("model switch cancelled: remove its generation"):
                remove_generation(root, before.pending_suffix, doc_ids)
        return self.get(name)

    def tidy(self, root: VectorIndex, partitions: Partitions) -> int:
        """Finish what a swap or a cancel that stopped part-way left: pending embeddings of a
        collection no longer switching become the document's embeddings if they are of the
        model it now uses and newer than its own, and go otherwise; the configured Chroma
        collection loses `default`'s vectors once `default` serves a later generation.
        Returns how many documents it tidied."""
        homes = {c.name: c for c in self.registry.tenancy.collections()}
        ids = self.store.artifact_ids(PENDING)
        docs = {doc.id: doc for doc in self.registry.reads.documents(ids)}
        tidied = 0
        for doc_id in ids:
            doc = docs.get(doc_id)
            home = homes.get(doc.collection) if doc is not None else None
            if home is not None and home.pending_generation is not None:
                continue
            pending = self.store.artifact_path(PENDING, doc_id)
            own = self.store.artifact_path("embeddings", doc_id)
            try:
                model = catalog.read_embeddings(self.store, doc_id, PENDING)[2]
                newer = not own.exists() or pending.stat().st_mtime > own.stat().st_mtime
                if home is not None and model == home.embedding_model and newer:
                    os.replace(pending, own)
                else:
                    pending.unlink()
            except FileNotFoundError:
                continue  # promoted or removed meanwhile
            tidied += 1
        default = homes.get(DEFAULT_COLLECTION)
        if default is not None and default.generation > 1 and root.count():
            with partitions.index_write("model switch: empty the configured index"):
                stale = sorted(root.document_ids())
                remove_generation(root, "", stale)
            tidied += len(stale)
        return tidied

    def get(self, name: str) -> Collection:
        found = self.registry.tenancy.collection(name)
        if found is None:
            raise CollectionNotFound(name)
        return found


def remove_generation(root: VectorIndex, suffix: str, doc_ids: Sequence[str]) -> None:
    """Drop a generation's Chroma collection; `default`'s first generation is the configured
    collection itself, which is never dropped, so its documents' vectors are deleted instead."""
    if suffix:
        root.drop(suffix)
        return
    index = root.of(suffix)
    for doc_id in doc_ids:
        index.delete_document(doc_id)
