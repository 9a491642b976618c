"""One sync of a source: what changed in the bucket or on the web site since the last look
becomes documents.

The cursor is each object's ETag (and LastModified) as last taken, kept in the registry:
- an object not in the cursor is a new document;
- an object whose ETag changed is a new version of its document, through the documents
  service's replace, so the old one stays searchable until the new one is indexed;
- an object in the cursor but no longer listed retires its document (vectors, lexical entries
  and files go), but only after a complete listing: a listing cut short retires nothing.
Each object is recorded in the cursor right after its document is registered, so a sync cut
short (the store went away) loses nothing and the next one registers nothing twice: the
document ids are derived from name and bytes, and registering a live id again is a no-op.

A web site's cursor is the same, keyed by page URL: its ETag (or a hash of its bytes) and
Last-Modified go back as a conditional request, and a 304 is an unchanged page. A page is
not retired by going missing from a listing but by answering 404 or 410 in two syncs in a
row; the first is written in its cursor's error (`GONE`).
"""

import email.utils
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from rag_pipeline.core.documents.errors import DocumentNotFound
from rag_pipeline.core.documents.service import DocumentsService, Partitions
from rag_pipeline.core.registry import Source, SourceObject
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.sources.fetch import FetchError, FetchFailed
from rag_pipeline.core.sources.s3 import ObjectInfo, SourceError
from rag_pipeline.core.sources.web import Website
from rag_pipeline.core.stages.extract import ExtractionError

# The cursor's error of a page the last sync found gone (404, 410): gone again retires it.
GONE = "gone: "


def _gone(taken: SourceObject) -> bool:
    return taken.error is not None and taken.error.startswith(GONE)


def _http_date(text: str | None) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp() if text else None
    except (TypeError, ValueError):  # a date no one can read is no date
        return None


def conditional(before: SourceObject | None) -> dict[str, str]:
    """If-None-Match and If-Modified-Since for a page as it was last taken."""
    if before is None or before.document_id is None:
        return {}
    headers = {}
    if not before.etag.startswith("sha256:"):
        headers["If-None-Match"] = before.etag
    if before.last_modified is not None:
        headers["If-Modified-Since"] = email.utils.formatdate(before.last_modified, usegmt=True)
    return headers


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
    # How long a web sync starts new page fetches (None: no bound); the pages left count as
    # deferred. Pages not in the cursor go first, so a site larger than one sync still grows.
    web_seconds: float | None = None


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

    def sync(self, source: Source, open_source: Callable[[], Listing | Website]) -> SyncReport:
        """One sync, holding the source so no other sync runs it meanwhile; raises SourceBusy.
        How it went is recorded on the source (last sync, counts, error)."""
        if not self.sources.lease(source.id, self.limits.lease_seconds):
            raise SourceBusy(f"{source.id}: another sync of it is under way")
        report = SyncReport()
        try:
            opened = open_source()
            if isinstance(opened, Website):
                self._sync_web(source, opened, report)
            else:
                self._sync(source, opened, report)
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
            doc_id = self._register(source, data, obj.key, labels, before, "s3", report)
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
        data: bytes,
        filename: str,
        labels: dict[str, Any],
        before: SourceObject | None,
        origin: str,
        report: SyncReport,
    ) -> str:
        """The bytes as a document: a new version of `before`'s document if it had one (the
        old one superseded once the new is indexed), else a new document."""
        old = before.document_id if before is not None else None
        if old is not None:
            try:
                accepted = self.service.replace(old, data, filename, metadata=labels, origin=origin)
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
            data, filename, origin=origin, collection=source.collection, metadata=labels
        )
        if accepted.created:
            report.added += 1
            report.documents.append(accepted.document.id)
        return accepted.document.id

    def _sync_web(self, source: Source, site: Website, report: SyncReport) -> None:
        pages = site.pages()
        report.seen = len(pages)
        known = self.sources.objects(source.id)
        ends = (
            None if self.limits.web_seconds is None else time.monotonic() + self.limits.web_seconds
        )
        taken = 0
        for url in sorted(pages, key=lambda page: page in known):  # new pages first
            if taken >= self.limits.max_objects or (ends is not None and time.monotonic() > ends):
                report.deferred += 1
                continue
            self.on_object(url)
            if self._take_page(source, site, url, known.get(url), report):
                taken += 1

    def _take_page(
        self,
        source: Source,
        site: Website,
        url: str,
        before: SourceObject | None,
        report: SyncReport,
    ) -> bool:
        """One page, fetched only if robots.txt allows it, conditionally if it was taken
        before; True if it was registered (new or changed)."""
        try:
            if not site.allowed(url):
                report.failed += 1  # disallowed by robots.txt: never fetched
                return False
            page = site.get(url, conditional(before))
        except FetchFailed as exc:
            if exc.status in (404, 410) and before is not None:
                self._page_gone(source, before, exc, report)
            else:
                report.failed += 1
            return False
        except FetchError:  # refused, too large, too slow
            report.failed += 1
            return False
        etag = page.etag or f"sha256:{hashlib.sha256(page.data).hexdigest()}"
        if before is not None and (page.status == 304 or before.etag == etag):
            if _gone(before):  # back as it was
                self.sources.record(source.id, replace(before, error=None))
            return False
        version = before.version + 1 if before is not None else 1
        labels: dict[str, Any] = {
            "source": source.id,
            "source_url": url,
            "source_etag": etag,
            "source_version": version,
        }
        error = doc_id = None
        try:
            doc_id = self._register(source, page.data, page.filename, labels, before, "web", report)
        except (ValueError, ExtractionError) as exc:  # empty, unsupported
            error = str(exc)
            report.failed += 1
        self.sources.record(
            source.id,
            SourceObject(url, etag, _http_date(page.last_modified), version, doc_id, error),
        )
        return doc_id is not None

    def _page_gone(
        self, source: Source, before: SourceObject, exc: FetchFailed, report: SyncReport
    ) -> None:
        """A page answering 404 or 410: counted (as failed) the first time, retired when the
        sync before found it gone too, so one bad moment of a site retires nothing."""
        if _gone(before):
            if before.document_id is not None:
                report.retired += self._retire(before.document_id)
            self.sources.forget(source.id, [before.key])
            return
        report.failed += 1
        self.sources.record(source.id, replace(before, error=f"{GONE}{exc}"))

    def _retire(self, doc_id: str) -> int:
        doc = self.service.registry.reads.get_row(doc_id)
        if doc is None or not doc.live:
            return 0
        self.service.delete(doc_id, self.index, self.partitions)
        return 1
