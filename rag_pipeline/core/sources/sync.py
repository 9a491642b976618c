"""One sync of a source: what changed in the bucket since the last look becomes documents.

The cursor is each object's ETag (and LastModified) as last taken, kept in the registry:
- an object not in the cursor is a new document;
- an object whose ETag changed is a new version of its document, through the documents
  service's replace, so the old one stays searchable until the new one is indexed;
- an object in the cursor but no longer listed retires its document (vectors, lexical entries
  and files go), but only after a complete listing: a listing cut short retires nothing.
Each object is recorded in the cursor right after its document is registered, so a sync cut
short (the store went away) loses nothing and the next one registers nothing twice: the
document ids are derived from name and bytes, and registering a live id again is a no-op.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rag_pipeline.core.documents.errors import DocumentNotFound
from rag_pipeline.core.documents.service import DocumentsService, Partitions
from rag_pipeline.core.registry import Source, SourceObject
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.sources.s3 import ObjectInfo, SourceError
from rag_pipeline.core.stages.extract import ExtractionError


class Listing(Protocol):
    def list(self) -> list[ObjectInfo]: ...

    def read(self, key: str, max_bytes: int) -> bytes: ...


class SourceBusy(Exception):
    """Another sync of the source is under way."""


@dataclass
class SyncReport:
    """What one sync did: objects seen in the listing, documents added, changed (new
    versions), retired, objects that could not become documents, and objects left for the
    next sync (over the per-sync limit); `error` says why the sync stopped, if it did."""

    seen: int = 0
    added: int = 0
    changed: int = 0
    retired: int = 0
    failed: int = 0
    deferred: int = 0
    error: str | None = None
    documents: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


@dataclass(frozen=True)
class SyncLimits:
    max_bytes: int
    max_objects: int
    lease_seconds: float = 600.0


class SourceSync:
    """Syncs sources of the registry through the documents service."""

    def __init__(
        self,
        service: DocumentsService,
        index: VectorIndex,
        partitions: Partitions,
        limits: SyncLimits,
        on_object: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.sources = service.registry.sources
        self.index = index
        self.partitions = partitions
        self.limits = limits
        # Told each key as it is taken: progress for logs (and a hook the tests cut a sync at).
        self.on_object = on_object or (lambda key: None)

    def sync(self, source: Source, open_bucket: Callable[[], Listing]) -> SyncReport:
        """One sync, holding the source so no other sync runs it meanwhile; raises SourceBusy.
        How it went is recorded on the source (last sync, counts, error)."""
        if not self.sources.lease(source.id, self.limits.lease_seconds):
            raise SourceBusy(f"{source.id}: another sync of it is under way")
        report = SyncReport()
        try:
            self._sync(source, open_bucket(), report)
        except SourceError as exc:
            report.error = str(exc)
        finally:
            self.sources.finish(source.id, report.counts(), report.error)
        return report

    def _sync(self, source: Source, bucket: Listing, report: SyncReport) -> None:
        listing = bucket.list()
        report.seen = len(listing)
        known = self.sources.objects(source.id)
        taken = 0
        for obj in listing:
            before = known.get(obj.key)
            if before is not None and before.etag == obj.etag:
                continue
            if taken >= self.limits.max_objects:
                report.deferred += 1
                continue
            taken += 1
            self.on_object(obj.key)
            self._take(source, bucket, obj, before, report)
        listed = {obj.key for obj in listing}
        gone = [key for key in known if key not in listed]
        # Two objects with the same name and bytes are one document: it goes with the last.
        kept = {
            o.document_id for key, o in self.sources.objects(source.id).items() if key in listed
        }
        for key in gone:
            doc_id = known[key].document_id
            if doc_id is not None and doc_id not in kept:
                report.retired += self._retire(doc_id)
        self.sources.forget(source.id, gone)

    def _take(
        self,
        source: Source,
        bucket: Listing,
        obj: ObjectInfo,
        before: SourceObject | None,
        report: SyncReport,
    ) -> None:
        version = before.version + 1 if before is not None else 1
        labels: dict[str, Any] = {
            "source": source.id,
            "source_key": obj.key,
            "source_etag": obj.etag,
            "source_version": version,
        }
        error = None
        doc_id = None
        try:
            data = bucket.read(obj.key, self.limits.max_bytes)
            old = before.document_id if before is not None else None
            doc_id = self._register(source, obj, data, labels, old, report)
        except (ValueError, ExtractionError) as exc:  # too large, empty, unsupported
            error = str(exc)
            report.failed += 1
        self.sources.record(
            source.id,
            SourceObject(obj.key, obj.etag, obj.last_modified, version, doc_id, error),
        )

    def _register(
        self,
        source: Source,
        obj: ObjectInfo,
        data: bytes,
        labels: dict[str, Any],
        old: str | None,
        report: SyncReport,
    ) -> str:
        if old is not None:
            try:
                accepted = self.service.replace(old, data, obj.key, metadata=labels, origin="s3")
            except DocumentNotFound:  # retired meanwhile (deleted by hand): a new life
                pass
            else:
                if accepted.created:
                    report.changed += 1
                    report.documents.append(accepted.document.id)
                elif accepted.document.id == old:  # same bytes, new ETag: new labels only
                    self.service.set_metadata(old, labels)
                return accepted.document.id
        accepted = self.service.add(
            data, obj.key, origin="s3", collection=source.collection, metadata=labels
        )
        if accepted.created:
            report.added += 1
            report.documents.append(accepted.document.id)
        return accepted.document.id

    def _retire(self, doc_id: str) -> int:
        doc = self.service.registry.reads.get_row(doc_id)
        if doc is None or not doc.live:
            return 0
        self.service.delete(doc_id, self.index, self.partitions)
        return 1
