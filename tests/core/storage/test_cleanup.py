"""Each cleanup rule on a real data dir and registry: what it removes, what it keeps, and that
a second run removes nothing."""

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.retrieval.vector_index import VectorIndex, VectorRecord, connect
from rag_pipeline.core.storage import cleanup
from rag_pipeline.core.storage.data_dir import ARTIFACT_KINDS, DocumentStore

HOUR = 3600.0


def _file(path: Path, age_s: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def _live(store: DocumentStore) -> Callable[[str], bool]:
    return lambda doc_id: store.read_source(doc_id) is not None


def test_processed_copies_go_after_their_grace_period(store: DocumentStore) -> None:
    processed = store.landing_dir / landing.PROCESSED
    old = _file(processed / "team" / "old.txt", age_s=3 * HOUR)
    fresh = _file(processed / "fresh.txt", age_s=60)
    waiting = _file(store.landing_dir / "waiting.txt", age_s=3 * HOUR)

    assert cleanup.processed_files(store, older_than_s=2 * HOUR) == 1
    assert not old.exists() and not old.parent.exists(), "its emptied folder goes too"
    assert fresh.exists() and waiting.exists()
    assert cleanup.processed_files(store, older_than_s=2 * HOUR) == 0


def test_old_rejections_go_with_their_rows(store: DocumentStore) -> None:
    service = DocumentsService(store)
    old = service.take_landing(_file(store.landing_dir / "old.txt", 0, b" \n").name).document
    between = time.time()
    time.sleep(0.01)
    new = service.take_landing(_file(store.landing_dir / "new.txt", 0, b"\t\n").name).document
    assert old is not None and new is not None
    old_file, new_file = Path(old.source_path or ""), Path(new.source_path or "")
    os.utime(old_file, (between - 1, between - 1))
    os.utime(new_file, (between + 1, between + 1))
    now = between + HOUR

    assert cleanup.rejected_files(store, older_than_s=HOUR, now=now) == 1
    assert store.registry.reads.get(old.id) is None and not old_file.exists()
    kept = store.registry.reads.get(new.id)
    assert kept is not None and kept.status == "rejected" and new_file.exists()
    assert cleanup.rejected_files(store, older_than_s=HOUR, now=now) == 0


def test_partial_files_go_but_complete_ones_stay(store: DocumentStore) -> None:
    stale = [
        _file(store.landing_dir / ".upload-in-progress", age_s=3 * HOUR),
        _file(store.landing_dir / "sub" / "big.pdf.part", age_s=3 * HOUR),
        _file(store.raw_dir / ".doc-1.tmp", age_s=3 * HOUR),
        _file(store.incoming_dir / "doc-2" / ".a.txt.tmp", age_s=3 * HOUR),
    ]
    kept = [
        _file(store.landing_dir / "still-writing.part", age_s=60),
        _file(store.landing_dir / "complete.txt", age_s=3 * HOUR),
        _file(store.landing_dir / landing.REJECTED / "bad.part", age_s=3 * HOUR),
        _file(store.raw_dir / "doc-3", age_s=3 * HOUR),
    ]

    assert cleanup.partial_files(store, older_than_s=2 * HOUR) == len(stale)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert cleanup.partial_files(store, older_than_s=2 * HOUR) == 0


def test_artifacts_of_documents_that_are_not_live_are_orphans(store: DocumentStore) -> None:
    service = DocumentsService(store)
    live = service.upload(b"A live document.\n", "live.txt").document
    deleted = service.upload(b"A deleted document.\n", "deleted.txt").document
    store.registry.lifecycle.retire(deleted.id, "deleted through the API")
    for doc_id in (live.id, deleted.id, "never-registered"):
        for kind in ARTIFACT_KINDS:
            _file(store.artifact_path(kind, doc_id), age_s=0)
        _file(store.raw_path(doc_id), age_s=0)
    _file(store.incoming_dir / "never-registered" / "a.txt", age_s=0)

    # Per orphan: one file per artifact kind, its raw copy and its incoming folder (the deleted
    # one's upload copy is still there: its row was retired without the service's file work).
    expected = 2 * (len(ARTIFACT_KINDS) + 2)
    assert cleanup.orphan_artifacts(store, _live(store)) == expected
    assert all(store.artifact_path(kind, live.id).exists() for kind in ARTIFACT_KINDS)
    assert store.raw_path(live.id).exists() and (store.incoming_dir / live.id).is_dir()
    assert store.artifact_ids("chunks") == [live.id]
    assert sorted(p.name for p in store.incoming_dir.iterdir()) == [live.id]
    assert cleanup.orphan_artifacts(store, _live(store)) == 0


def test_vectors_of_documents_that_are_not_live_are_orphans(
    store: DocumentStore, chroma_url: str
) -> None:
    index = VectorIndex(connect(chroma_url), f"test-{uuid.uuid4().hex[:12]}")
    live = DocumentsService(store).upload(b"A live document.\n", "live.txt").document
    for doc_id, chunks in ((live.id, 2), ("gone-1", 3)):
        records = [VectorRecord(n, 1, 0, 5) for n in range(chunks)]
        index.replace_document(doc_id, "f.txt", records, np.eye(chunks, 8, dtype=np.float32))

    assert cleanup.orphan_vectors(index, _live(store)) == 3
    assert index.document_ids() == {live.id} and index.count(live.id) == 2
    assert cleanup.orphan_vectors(index, _live(store)) == 0


def test_what_a_collection_delete_that_stopped_left_is_cleaned_up(
    store: DocumentStore, chroma_url: str
) -> None:
    index = VectorIndex(connect(chroma_url), f"test-{uuid.uuid4().hex[:12]}")
    service = DocumentsService(store)
    kept = store.registry.tenancy.create_collection("kept")
    gone = store.registry.tenancy.create_collection("gone")
    assert kept is not None and gone is not None
    stays = service.upload(b"A kept document.\n", "k.txt", collection="kept").document
    left = service.upload(b"A document left behind.\n", "l.txt", collection="gone").document
    for doc, home in ((stays, kept), (left, gone)):
        records = [VectorRecord(0, 1, 0, 5)]
        index.of(home.index_suffix).replace_document(
            doc.id, "f.txt", records, np.eye(1, 8, dtype=np.float32)
        )
    # The delete stopped after forgetting the collection, before its documents and index.
    store.registry.tenancy.remove_collection("gone")

    retired, dropped = cleanup.deleted_collections(store, index, "its collection was deleted")

    assert retired == [left.id] and dropped == [gone.index_suffix]
    assert store.registry.reads.get(left.id).status == "deleted"  # type: ignore[union-attr]
    assert index.suffixes() == {kept.index_suffix}
    assert index.of(kept.index_suffix).count(stays.id) == 1
    assert cleanup.deleted_collections(store, index, "again") == ([], [])
