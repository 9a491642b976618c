"""The documents service on a real registry, data dir and Chroma collection.

`Partitions` is the service's port to Dagster; `KeptPartitions` is a real implementation of
it without an instance: it holds nothing back and records what it was asked to release.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.errors import DocumentNotFound
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.retrieval.vector_index import VectorIndex, VectorRecord, connect
from rag_pipeline.core.stages.extract import ExtractionError
from rag_pipeline.core.storage.data_dir import ARTIFACT_KINDS, DocumentStore

TEXT = b"Oil prices rose sharply in the spring.\n"
OTHER = b"The harvest came in late that year.\n"


class KeptPartitions:
    def __init__(self) -> None:
        self.released: list[str] = []
        self.writes: list[str] = []

    def release(self, doc_id: str) -> bool:
        self.released.append(doc_id)
        return True

    @contextmanager
    def index_write(self, purpose: str) -> Iterator[None]:
        self.writes.append(purpose)
        yield


@pytest.fixture()
def service(store: DocumentStore) -> DocumentsService:
    return DocumentsService(store)


@pytest.fixture()
def index(chroma_url: str) -> VectorIndex:
    return VectorIndex(connect(chroma_url), f"test-{uuid.uuid4().hex[:12]}")


def _land(store: DocumentStore, rel: str, data: bytes) -> str:
    path = store.landing_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel


def _indexed(store: DocumentStore, index: VectorIndex, doc_id: str) -> None:
    """What a finished run leaves: raw bytes, every artifact and two vectors."""
    doc = store.registry.reads.get(doc_id)
    assert doc is not None
    store.keep_raw(doc)
    for kind in ARTIFACT_KINDS:
        path = store.artifact_path(kind, doc_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"parquet")
    records = [VectorRecord(n, 1, 0, 10) for n in range(2)]
    index.replace_document(doc_id, "a.txt", records, np.eye(2, 8, dtype=np.float32))


def test_an_upload_is_registered_once_whatever_it_is_called(
    store: DocumentStore, service: DocumentsService
) -> None:
    first = service.upload(TEXT, "notes.txt", chunk_size=200)
    assert first.created
    doc = first.document
    assert (doc.status, doc.origin, doc.media_type, doc.chunk_size) == (
        "queued",
        "upload",
        "text/plain",
        200,
    )
    assert Path(doc.source_path or "").read_bytes() == TEXT

    again = service.upload(TEXT, "copy of notes.txt")
    assert again.duplicate and again.document.id == doc.id
    assert sorted(p.name for p in store.incoming_dir.iterdir()) == [doc.id], (
        "the duplicate's copy is not kept"
    )
    # Bytes that can never be a document are refused before anything is written.
    with pytest.raises(ExtractionError):
        service.upload(b"   \n", "blank.txt")
    assert [d.id for d in store.registry.reads.page()[0]] == [doc.id]


def test_the_cli_keeps_names_apart_and_submits_its_own_partitions(
    service: DocumentsService,
) -> None:
    first = service.add(TEXT, "a.txt", submitted=True)
    second = service.add(TEXT, "b.txt", submitted=True)
    assert first.created and second.created and first.document.id != second.document.id
    assert service.claim_waiting(now=100.0) == []


def test_replacing_with_the_same_bytes_is_a_duplicate_and_with_new_bytes_supersedes(
    store: DocumentStore, service: DocumentsService, index: VectorIndex
) -> None:
    old = service.upload(TEXT, "report.txt").document

    same = service.replace(old.id, TEXT, "report.txt")
    assert same.duplicate and same.document.id == old.id

    new = service.replace(old.id, OTHER, "report.txt")
    assert new.created and new.document.id != old.id
    assert new.document.supersedes == old.id
    assert store.registry.reads.get_live(old.id) is not None, (
        "searchable until the new one is indexed"
    )

    _indexed(store, index, old.id)
    assert service.supersede(new.document.id, index) == old.id
    gone = service.get(old.id)
    assert (gone.status, gone.superseded_by) == (DocumentStatus.deleted, new.document.id)
    assert index.count(old.id) == 0 and not store.raw_path(old.id).exists()
    assert service.supersede(new.document.id, index) is None, "only once"

    with pytest.raises(DocumentNotFound, match="deleted"):
        service.replace(old.id, b"A third version.\n", "report.txt")
    with pytest.raises(DocumentNotFound):
        service.replace("no-such-0123456789ab", OTHER, "report.txt")


def test_deleting_a_live_document_removes_its_vectors_files_and_partition(
    store: DocumentStore, service: DocumentsService, index: VectorIndex
) -> None:
    doc = service.upload(TEXT, "a.txt").document
    kept = service.upload(OTHER, "b.txt").document
    _indexed(store, index, doc.id)
    _indexed(store, index, kept.id)
    partitions = KeptPartitions()

    service.delete(doc.id, index, partitions)

    assert service.get(doc.id).status == DocumentStatus.deleted
    assert (partitions.writes, partitions.released) == (["delete"], [doc.id])
    assert index.count(doc.id) == 0 and index.count(kept.id) == 2
    assert not store.raw_path(doc.id).exists()
    assert [k for k in ARTIFACT_KINDS if store.artifact_path(k, doc.id).exists()] == []
    assert all(store.artifact_path(k, kept.id).exists() for k in ARTIFACT_KINDS)

    with pytest.raises(DocumentNotFound, match="already deleted"):
        service.delete(doc.id, index, partitions)
    with pytest.raises(DocumentNotFound):
        service.delete("no-such-0123456789ab", index, partitions)
    assert partitions.released == [doc.id]


def test_deleting_a_rejected_file_forgets_it(
    store: DocumentStore, service: DocumentsService, index: VectorIndex
) -> None:
    landed = service.take_landing(_land(store, "blank.txt", b"  \n\n"))
    assert landed.action == "rejected" and landed.document is not None
    rejected = landed.document
    assert rejected.error_code == "empty_file"
    kept_at = Path(rejected.source_path or "")
    assert kept_at.is_relative_to(store.landing_dir / landing.REJECTED) and kept_at.exists()
    partitions = KeptPartitions()

    service.delete(rejected.id, index, partitions)

    assert store.registry.reads.get(rejected.id) is None and not kept_at.exists()
    assert partitions.released == [] and partitions.writes == []


def test_a_landing_file_is_new_then_in_flight_then_a_duplicate(
    store: DocumentStore, service: DocumentsService
) -> None:
    rel = _land(store, "notes.txt", TEXT)
    new = service.take_landing(rel)
    assert new.action == "new" and new.document is not None
    assert (new.document.origin, new.document.landing_path) == ("landing", rel)

    # Seen again before its run took the bytes: it waits, and stays where it is.
    assert service.take_landing(rel).action == "in_flight"
    assert (store.landing_dir / rel).exists()

    # The same bytes under the same name dropped elsewhere in the collection (`default/` is
    # the default collection's folder too) are the same document.
    twin = service.take_landing(_land(store, "default/notes.txt", TEXT))
    assert twin.action == "duplicate" and twin.document is not None
    assert twin.document.id == new.document.id
    assert (store.landing_dir / landing.PROCESSED / "default/notes.txt").exists()
    assert not (store.landing_dir / "default/notes.txt").exists()

    assert service.take_landing("never-there.txt").action == "gone"


def test_a_new_version_at_the_same_landing_path_supersedes_the_old(
    store: DocumentStore, service: DocumentsService
) -> None:
    first = service.take_landing(_land(store, "notes.txt", TEXT)).document
    assert first is not None
    store.keep_raw(first)  # raw_document took it; the path is free for a new version
    second = service.take_landing(_land(store, "notes.txt", OTHER))
    assert second.action == "new" and second.document is not None
    assert second.document.supersedes == first.id


def test_waiting_documents_are_claimed_once_in_arrival_order(
    store: DocumentStore, service: DocumentsService, index: VectorIndex
) -> None:
    first = service.upload(TEXT, "first.txt").document
    withdrawn = service.upload(b"Deleted before anyone picked it up.\n", "w.txt").document
    landed = service.take_landing(_land(store, "second.txt", OTHER)).document
    assert landed is not None
    service.delete(withdrawn.id, index, KeptPartitions())

    claimed = service.claim_waiting(now=100.0)

    assert [d.id for d in claimed] == [first.id, landed.id]
    assert [d.submitted_at for d in store.registry.reads.documents([first.id, landed.id])] == [
        100.0,
        100.0,
    ]
    assert service.claim_waiting(now=101.0) == []
    # A claim whose tick was lost is made again, and only that one.
    assert [d.id for d in service.claim_waiting(now=102.0, lost=[landed.id])] == [landed.id]
