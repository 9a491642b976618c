"""A data dir laid out as before the registry is migrated into it: every document keeps its
status and stays searchable, waiting uploads and rejected files are carried over, and nothing is
lost."""

import json
import os
from pathlib import Path

from support.runs import add_files, copy_corpus, materialize, run_cli, sensor_tick

from rag_pipeline.core.documents.reports import document_reports, find_report
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.data_dir import DocumentStore, document_id, sha256_bytes

DOCS = ["text/uns_norwich-city.txt", "markdown/haystack_sample.md", "pdf_problem/uns_password.pdf"]


def _old_layout(store: DocumentStore, corpus: Path) -> tuple[str, str]:
    """Write what the previous release kept on disk for the registry's documents, then drop
    the registry: source records, a tombstone, a waiting upload and a rejected file's record.
    Returns the ids of the waiting upload and of the rejected file."""
    sources, tombstones = store.root / "sources", store.root / "tombstones"
    for doc in store.registry.reads.page(limit=1000)[0]:
        if doc.status == "deleted":
            tombstone = {
                "document_id": doc.id,
                "filename": doc.filename,
                "deleted_at": doc.deleted_at,
                "reason": doc.delete_reason,
                "superseded_by": None,
            }
            tombstones.mkdir(parents=True, exist_ok=True)
            (tombstones / f"{doc.id}.json").write_text(json.dumps(tombstone))
            continue
        record = {
            "document_id": doc.id,
            "filename": doc.filename,
            "sha256": doc.sha256,
            "size": doc.bytes,
            "source_path": doc.source_path,
            "registered_at": doc.registered_at,
            "chunk_size": doc.chunk_size,
            "chunk_overlap": doc.chunk_overlap,
            "landing_path": None,
            "supersedes": None,
        }
        sources.mkdir(parents=True, exist_ok=True)
        (sources / f"{doc.id}.json").write_text(json.dumps(record))
    (store.root / "partition_releases").mkdir()

    data = (corpus / "markdown/uns_codeblock.md").read_bytes()
    waiting = document_id("uns_codeblock.md", sha256_bytes(data))
    relpath = f"api/{waiting}/uns_codeblock.md"
    (store.landing_dir / relpath).parent.mkdir(parents=True)
    (store.landing_dir / relpath).write_bytes(data)
    upload = {
        "document_id": waiting,
        "filename": "uns_codeblock.md",
        "landing_path": relpath,
        "uploaded_at": 1.0e9,
        "chunk_size": 120,
        "chunk_overlap": None,
        "supersedes": None,
        "sha256": sha256_bytes(data),
    }
    (store.landing_dir / ".uploads").mkdir()
    (store.landing_dir / ".uploads" / f"{waiting}.json").write_text(json.dumps(upload))

    rejected_dir = store.landing_dir / "rejected"
    rejected_dir.mkdir()
    (rejected_dir / "blank.txt").write_bytes(b"  \n")
    blank = document_id("blank.txt", sha256_bytes(b"  \n"))
    rejection = {
        "filename": "blank.txt",
        "landing_path": "blank.txt",
        "code": "empty_file",
        "message": "the file has no text",
        "rejected_at": 1.0e9,
        "document_id": blank,
    }
    (rejected_dir / "blank.txt.json").write_text(json.dumps(rejection))

    for name in ("registry.db", "registry.db-wal", "registry.db-shm"):
        (store.root / name).unlink(missing_ok=True)
    return waiting, blank


def _view(store: DocumentStore) -> dict[str, tuple[str, int | None, str | None]]:
    return {
        r.id: (str(r.status), r.chunks, r.error.code if r.error else None)
        for r in document_reports(store)
    }


def test_a_data_dir_from_before_the_registry_keeps_every_status_and_stays_searchable(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in DOCS])
    materialize(instance, ids)
    data_dir = Path(rag_env["RAG_DATA_DIR"])
    store = DocumentStore(data_dir)
    index = VectorIndex(connect(rag_env["RAG_CHROMA_URL"]), rag_env["RAG_CHROMA_COLLECTION"])
    gone = ids[0]
    DocumentsService(store).retire(gone, index, "deleted through the API")
    before = _view(store)
    assert [before[i][0] for i in ids[1:]] == ["indexed", "failed"]
    _, found_before = run_cli(["search", "haystack pipelines", "--json", "--mode", "lexical"])
    waiting, blank = _old_layout(store, corpus)
    os.utime(data_dir, None)

    code, out = run_cli(["migrate"])

    assert code == 0 and "migrated 2 documents, 1 deleted, 1 waiting uploads" in out, out
    after = _view(store)
    assert {i: after[i] for i in ids[1:]} == {i: before[i] for i in ids[1:]}
    deleted = find_report(store, gone)
    assert deleted is not None and deleted.status == "deleted"
    upload = store.registry.reads.get(waiting)
    assert upload is not None and (upload.status, upload.chunk_size) == ("queued", 120)
    assert (
        Path(upload.source_path or "").read_bytes()
        == (corpus / "markdown/uns_codeblock.md").read_bytes()
    )
    rejected = find_report(store, blank)
    assert rejected is not None and rejected.status == "rejected"
    assert rejected.error is not None and rejected.error.code == "empty_file"
    # Nothing lost: the old files are kept, out of the way.
    [legacy] = (data_dir / "legacy").iterdir()
    assert (legacy / "sources").is_dir() and (legacy / "tombstones").is_dir()
    assert not (data_dir / "sources").exists() and not (store.landing_dir / ".uploads").exists()

    _, found_after = run_cli(["search", "haystack pipelines", "--json", "--mode", "lexical"])
    assert found_after == found_before and ids[1] in found_after
    # The waiting upload is picked up like any other, and ingested.
    result = sensor_tick(instance, str(data_dir))
    assert [k for r in result.dynamic_partitions_requests for k in r.partition_keys] == [waiting]
    assert materialize(instance, [waiting]).success
    assert find_report(store, waiting).status == "indexed"  # type: ignore[union-attr]

    assert run_cli(["migrate"]) == (0, f"nothing to migrate in {data_dir}\n")
