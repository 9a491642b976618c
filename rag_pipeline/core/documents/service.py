"""The documents service: every way a document is added, replaced or removed, in one place.

The API, the CLI, the sensor and the ingestion step all call it. Each verb is one registry
transaction around the files it touches, so there is no lock or pointer file beside it:
- bytes are written before their row commits, so an acknowledged upload survives a crash;
- identical bytes uploaded at once become one document (the registry serialises them);
- a delete either withdraws a document before the sensor picks it up, or finds it picked up,
  in which case its run drops it.
What belongs to Dagster (partitions, the index-write pool) comes in through `Partitions`.
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents import metadata as meta
from rag_pipeline.core.documents.errors import DocumentNotFound
from rag_pipeline.core.documents.reruns import Reruns
from rag_pipeline.core.registry import (
    DEFAULT_COLLECTION,
    Collection,
    CollectionNotFound,
    Document,
    DocumentStatus,
)
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.stages.extract import DEFAULT_SNIFF_TIMEOUT_S, ExtractionError, accept
from rag_pipeline.core.storage.data_dir import (
    DocumentStore,
    document_id,
    safe_filename,
    sha256_bytes,
)
from rag_pipeline.core.storage.nofollow import NotRegularFile


class Partitions(Protocol):
    """Dagster's side of a document: its partition, and the pool that guards index writes."""

    def release(self, doc_id: str) -> bool: ...

    def index_write(self, purpose: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Accepted:
    document: Document
    created: bool

    @property
    def duplicate(self) -> bool:
        return not self.created


@dataclass(frozen=True)
class Landed:
    """What became of a ready landing file: `new`, `in_flight` (registered, waiting for its
    run), `duplicate`, `rejected` or `gone`."""

    relpath: str
    action: str
    document: Document | None = None


class DocumentsService:
    def __init__(
        self,
        store: DocumentStore,
        metadata_max_bytes: int = meta.METADATA_MAX_BYTES,
        sniff_timeout_s: float = DEFAULT_SNIFF_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.registry = store.registry
        self.reruns = Reruns(store.registry)
        self.metadata_max_bytes = metadata_max_bytes
        self.sniff_timeout_s = sniff_timeout_s
        # Landing folders' collections, for the life of this (short-lived) service.
        self._homes: dict[str, Collection | None] = {}

    def collection(self, name: str) -> Collection:
        found = self.registry.tenancy.collection(name)
        if found is None:
            raise CollectionNotFound(name)
        return found

    def add(
        self,
        data: bytes,
        filename: str,
        *,
        origin: str = "cli",
        collection: str = DEFAULT_COLLECTION,
        metadata: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        supersedes: str | None = None,
        dedupe_by_content: bool = False,
        submitted: bool = False,
        media_type: str | None = None,
    ) -> Accepted:
        """Register bytes as a document of a collection; raises ExtractionError for what can
        never be one, CollectionNotFound for a collection that does not exist.

        Chunk options not given are the collection's. `submitted` says the caller adds the
        partition itself (the CLI); otherwise the sensor picks the document up. `media_type`
        is what `accept` said of these bytes, when the caller has asked it already (the API
        checks a whole request before keeping any of it).
        """
        home = self.collection(collection)
        name = safe_filename(filename)
        media_type = media_type or accept(data, name, self.sniff_timeout_s)
        digest = sha256_bytes(data)
        doc_id = document_id(name, digest, collection)
        copy = self.store.keep_incoming(doc_id, name, data)
        doc, created = self._register(
            doc_id,
            name,
            data,
            digest,
            media_type,
            origin=origin,
            source_path=str(copy),
            collection=collection,
            metadata=meta.validate(metadata or {}, self.metadata_max_bytes),
            chunk_size=chunk_size if chunk_size is not None else home.chunk_size,
            chunk_overlap=chunk_overlap if chunk_overlap is not None else home.chunk_overlap,
            supersedes=supersedes,
            dedupe_by_content=dedupe_by_content,
            submitted=submitted,
        )
        if not created and doc.id != doc_id:
            self.store.remove_incoming(doc_id)  # the same bytes live on under another id
        return Accepted(doc, created)

    def upload(
        self,
        data: bytes,
        filename: str,
        *,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        media_type: str | None = None,
    ) -> Accepted:
        """An API upload: the same bytes under any name are the document they already are in
        that collection."""
        return self.add(
            data,
            filename,
            origin="upload",
            collection=collection,
            metadata=metadata,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            dedupe_by_content=True,
            media_type=media_type,
        )

    def replace(
        self,
        doc_id: str,
        data: bytes,
        filename: str,
        *,
        metadata: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        media_type: str | None = None,
        origin: str = "upload",
    ) -> Accepted:
        """A new version, in the old one's collection and with its metadata unless given new
        metadata: the old one stays searchable until the new one is indexed."""
        old = self.get(doc_id)
        if not old.live:
            raise DocumentNotFound(doc_id, f": it is {old.status}")
        name = safe_filename(filename)
        media_type = media_type or accept(data, name, self.sniff_timeout_s)
        if document_id(name, sha256_bytes(data), old.collection) == doc_id:
            return Accepted(old, created=False)
        return self.add(
            data,
            name,
            origin=origin,
            collection=old.collection,
            metadata=old.metadata if metadata is None else metadata,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            supersedes=doc_id,
            dedupe_by_content=True,
            media_type=media_type,
        )

    def get(self, doc_id: str) -> Document:
        found = self.registry.reads.get(doc_id)
        if found is None:
            raise DocumentNotFound(doc_id)
        return found

    def delete(self, doc_id: str, index: VectorIndex, partitions: Partitions) -> None:
        """Remove a document's vectors, terms, files and partition; it then reads `deleted`.

        A rejected file is forgotten instead. A partition that a queued or running run names
        goes once that run is done with it.
        """
        doc = self.get(doc_id)
        if doc.status == DocumentStatus.deleted:
            raise DocumentNotFound(doc_id, ": it is already deleted")
        if doc.status == DocumentStatus.rejected:
            self.forget_rejection(doc)
            return
        with partitions.index_write("delete"):
            self.retire(doc_id, index, "deleted through the API")
        partitions.release(doc_id)

    def retire(
        self, doc_id: str, index: VectorIndex, reason: str, by: str | None = None
    ) -> int | None:
        """Mark a live document deleted and remove what it left; the caller holds the
        index-write pool and releases the partition. Returns vectors removed, None if it was
        not live."""
        # Lexical search drops it first, so it is never found with its vectors half gone.
        self.store.artifact_path("lexical", doc_id).unlink(missing_ok=True)
        doc = self.registry.lifecycle.retire(doc_id, reason, superseded_by=by)
        if doc is None:
            return None
        home = self.registry.tenancy.collection(doc.collection)
        # A collection being deleted has no row any more: its whole index goes after this.
        removed = index.of(home.index_suffix).delete_document(doc_id) if home is not None else 0
        if home is not None and home.pending_suffix is not None:
            index.of(home.pending_suffix).delete_document(doc_id)  # a model switch's generation
        self.store.remove_files(doc)
        return removed

    def set_metadata(self, doc_id: str, patch: Any) -> Document:
        """Merge a change into a live document's metadata (a key set to null goes); its
        vectors and chunks stay as they are. Raises MetadataError for what cannot be kept."""
        doc = self.get(doc_id)
        if not doc.live:
            raise DocumentNotFound(doc_id, f": it is {doc.status}")
        merged = meta.merge(doc.metadata, patch, self.metadata_max_bytes)
        changed = self.registry.tenancy.set_metadata(doc_id, merged)
        if changed is None:
            raise DocumentNotFound(doc_id, ": it was deleted meanwhile")
        return changed

    def supersede(self, doc_id: str, index: VectorIndex) -> str | None:
        """The new version is indexed: retire the one it replaces. Returns the old id."""
        doc = self.registry.reads.get_live(doc_id)
        old = doc.supersedes if doc is not None else None
        if not old or self.retire(old, index, "superseded", by=doc_id) is None:
            return None
        return old

    def forget_rejection(self, doc: Document) -> None:
        if doc.source_path:
            rejected = Path(doc.source_path)
            rejected.unlink(missing_ok=True)
            rejected.with_name(rejected.name + ".json").unlink(missing_ok=True)
        self.registry.lifecycle.forget(doc.id)

    def take_landing(self, relpath: str) -> Landed:
        """Register a ready landing file as a document, or say why not."""
        path = self.store.landing_dir / relpath
        try:
            data = landing.read(self.store, relpath)
        except FileNotFoundError:
            return Landed(relpath, "gone")
        except NotRegularFile as exc:
            # A symlink's target is never read: it could be any file the service can read.
            message = f"{path.name} is {exc.what}; the landing zone takes regular files only"
            code = "symlink" if exc.symlink else "not_a_regular_file"
            return self._reject(relpath, code, message, None)
        except OSError as exc:
            return self._reject(relpath, "unreadable", str(exc), None)
        name = safe_filename(path.name)
        collection = landing.collection_of(relpath)
        home = self._landing_home(collection)
        if home is None:
            return self._unknown_collection(relpath, data)
        try:
            media_type = accept(data, name, self.sniff_timeout_s)
        except ExtractionError as exc:
            return self._reject(relpath, exc.code, exc.message, data, collection)
        try:
            metadata = self._sidecar(relpath)
        except meta.MetadataError as exc:
            message = f"{path.name}{meta.SIDECAR_SUFFIX}: {exc}"
            return self._reject(relpath, "invalid_metadata", message, data, collection)
        digest = sha256_bytes(data)
        doc_id = document_id(name, digest, collection)
        existing = self.registry.reads.get_live_row(doc_id)
        if existing is not None:
            waiting = not self.store.raw_path(doc_id).exists()
            if waiting and existing.source_path == str(path):
                return Landed(relpath, "in_flight", existing)
            landing.move_to(self.store, relpath, landing.PROCESSED)
            return Landed(relpath, "duplicate", existing)
        previous = self.registry.reads.live_at_landing_path(relpath)
        try:
            doc, created = self._register(
                doc_id,
                name,
                data,
                digest,
                media_type,
                origin="landing",
                source_path=str(path),
                landing_path=relpath,
                supersedes=previous.id if previous is not None else None,
                collection=collection,
                metadata=metadata,
                chunk_size=home.chunk_size,
                chunk_overlap=home.chunk_overlap,
            )
        except CollectionNotFound:  # deleted since it was looked up
            return self._unknown_collection(relpath, data)
        return Landed(relpath, "new" if created else "duplicate", doc)

    def _landing_home(self, name: str) -> Collection | None:
        """A collection's settings, looked up once per service (a sensor tick makes one): a
        tick of 2,000 files asks once per folder. Registering re-checks in its transaction
        that the collection still exists."""
        if name not in self._homes:
            self._homes[name] = self.registry.tenancy.collection(name)
        return self._homes[name]

    def _unknown_collection(self, relpath: str, data: bytes) -> Landed:
        folder = Path(relpath).parts[0]
        message = (
            f"landing/{folder}/ names no collection: create it (POST /collections) and drop "
            "the file again"
        )
        return self._reject(relpath, "unknown_collection", message, data)

    def _sidecar(self, relpath: str) -> dict[str, Any]:
        """The metadata in `<file>.meta.json` beside a landing file, if there is one.

        A symlinked sidecar rejects its file rather than letting it in without metadata: the
        sender meant the document to carry metadata (which filters may scope by), and a
        rejection says so where a silent drop would not."""
        # `parse` refuses text over four times the limit; reading stops there too.
        limit = self.metadata_max_bytes * 4
        try:
            text = landing.read_sidecar(self.store, relpath, limit)
        except NotRegularFile as exc:
            raise meta.MetadataError(f"it is {exc.what}; a sidecar must be a regular file") from exc
        except ValueError as exc:
            raise meta.MetadataError(f"metadata is larger than the limit: {exc}") from exc
        except OSError as exc:
            raise meta.MetadataError(f"unreadable: {exc}") from exc
        return {} if text is None else meta.parse(text, self.metadata_max_bytes)

    def _register(
        self, doc_id: str, name: str, data: bytes, digest: str, media_type: str, **options: Any
    ) -> tuple[Document, bool]:
        return self.registry.lifecycle.register(
            doc_id,
            filename=name,
            sha256=digest,
            size=len(data),
            media_type=media_type,
            **options,
        )

    def _reject(
        self,
        relpath: str,
        code: str,
        message: str,
        data: bytes | None,
        collection: str = DEFAULT_COLLECTION,
    ) -> Landed:
        digest = sha256_bytes(data) if data is not None else None
        name = safe_filename(Path(relpath).name)
        doc_id = (
            document_id(name, digest, collection) if digest is not None else f"rejected:{relpath}"
        )
        target = landing.reject(self.store, relpath)
        doc = self.registry.lifecycle.reject(
            doc_id,
            filename=Path(relpath).name,
            code=code,
            message=message,
            origin="landing",
            landing_path=relpath,
            source_path=str(target) if target is not None else None,
            sha256=digest,
            size=len(data) if data is not None else None,
            collection=collection,
        )
        return Landed(relpath, "rejected", doc)

    def claim_waiting(self, now: float, lost: Sequence[str] = ()) -> list[Document]:
        """Documents to pick up, in arrival order: each once, unless its claim was lost."""
        return self.registry.lifecycle.claim_for_pickup(now, again=lost)
