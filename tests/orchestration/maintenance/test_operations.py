"""Cleanup, on real data in a real instance and Chroma server."""

import os
import time
from pathlib import Path

from support.runs import add_files, copy_corpus, definitions, materialize

from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry.model import documents
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.data_dir import DocumentStore


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_cleanup_rules_each_remove_what_they_should_and_are_idempotent(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    [live] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    [gone] = add_files(instance, [copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path)])
    assert materialize(instance, [live, gone]).success
    index = VectorIndex(connect(rag_env["RAG_CHROMA_URL"]), rag_env["RAG_CHROMA_COLLECTION"])
    # An orphan: its partition and registry row vanished without its artifacts and vectors.
    instance.delete_dynamic_partition("documents", gone)
    with store.registry.db.engine.begin() as conn:
        conn.execute(documents.delete().where(documents.c.id == gone))

    processed = store.landing_dir / "processed" / "old.md"
    fresh_processed = store.landing_dir / "processed" / "new.md"
    partial = store.landing_dir / "upload.pdf.part"
    fresh_partial = store.landing_dir / "writing.txt.part"
    for path in (processed, fresh_processed, partial, fresh_partial):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    _age(processed, 2 * 86400)
    _age(partial, 2 * 86400)
    (store.landing_dir / "bad.txt").write_bytes(b"")
    rejection = DocumentsService(store).take_landing("bad.txt").document
    assert rejection is not None and rejection.status == "rejected"
    for path in (store.landing_dir / "rejected").iterdir():
        _age(path, 40 * 86400)
    with store.registry.db.engine.begin() as conn:  # rejected 40 days ago
        conn.execute(
            documents.update()
            .where(documents.c.id == rejection.id)
            .values(registered_at=time.time() - 40 * 86400)
        )
    stale_tmp = store.catalog_dir / "chunks" / ".x.parquet.123.tmp"
    stale_tmp.write_text("half")
    _age(stale_tmp, 2 * 86400)

    job = definitions().resolve_job_def("cleanup_job")
    first = job.execute_in_process(instance=instance)
    second = job.execute_in_process(instance=instance)

    meta = _metadata(first)
    assert meta["processed_deleted"] == 1 and meta["partial_deleted"] == 2
    assert meta["rejected_deleted"] == 1
    assert meta["orphan_artifacts_deleted"] >= 4 and meta["orphan_vectors_deleted"] > 0
    assert all(v == 0 for k, v in _metadata(second).items() if k != "runs_deleted"), _metadata(
        second
    )
    assert fresh_processed.exists() and fresh_partial.exists() and not processed.exists()
    assert store.registry.reads.get(rejection.id) is None, "the rejection's row goes with its file"
    assert index.count(gone) == 0 and index.count(live) > 0
    assert (
        not store.artifact_path("chunks", gone).exists()
        and store.artifact_path("chunks", live).exists()
    )


def test_cleanup_deletes_run_history_past_its_retention(instance, rag_env, monkeypatch) -> None:
    job = definitions().resolve_job_def("cleanup_job")
    old_run = job.execute_in_process(instance=instance).run_id
    monkeypatch.setenv("RUN_RETENTION_DAYS", "0")
    result = definitions().resolve_job_def("cleanup_job").execute_in_process(instance=instance)
    assert _metadata(result)["runs_deleted"] >= 1
    assert instance.get_run_by_id(old_run) is None
    assert instance.get_run_by_id(result.run_id) is not None


def _metadata(result) -> dict:  # type: ignore[no-untyped-def]
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_cleanup_with_a_symlinked_rejected_folder_fails_loudly_and_deletes_nothing_outside(
    instance, rag_env, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    outside = tmp_path / "outside"
    outside.mkdir()
    kept = outside / "old.txt"
    kept.write_text("not the landing zone's")
    _age(kept, 40 * 86400)
    store.landing_dir.mkdir(parents=True, exist_ok=True)
    (store.landing_dir / "rejected").symlink_to(outside, target_is_directory=True)
    partial = store.landing_dir / "upload.pdf.part"
    partial.write_text("x")
    _age(partial, 2 * 86400)

    result = (
        definitions()
        .resolve_job_def("cleanup_job")
        .execute_in_process(instance=instance, raise_on_error=False)
    )

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"landing zone refused: {store.landing_dir / 'rejected'} is a symbolic link" in message
    assert kept.read_text() == "not the landing zone's"
    assert not partial.exists(), "the other rules still ran"
