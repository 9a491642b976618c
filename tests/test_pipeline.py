"""The ingestion chain on a real Dagster instance, real Chroma and real corpus files.

These use the deterministic hash embedder for speed; test_e2e_real_model.py uses the real one.
"""

import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    REPO,
    add_files,
    copy_corpus,
    definitions,
    materialize,
    run_cli,
    sensor_tick,
)
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.execution.api import execute_run

from rag_pipeline.core.catalog import Catalog
from rag_pipeline.core.documents import DocumentsService
from rag_pipeline.core.index import VectorIndex, connect
from rag_pipeline.core.store import DocumentStore
from rag_pipeline.definitions import defs
from rag_pipeline.partitions import DOCUMENT_IDS_TAG, release_deferred_partitions, release_partition
from rag_pipeline.resources import (
    DEAD_HOLDER_CHECK_SECONDS,
    INDEX_WRITE_POOL,
    api_holder_id,
    free_dead_holders,
    index_write_slot,
)
from rag_pipeline.status import document_reports, find_report, reconcile


def _reports(instance, env) -> dict[str, dict]:
    store = DocumentStore(env["RAG_DATA_DIR"])
    return {r.id: r.to_dict() for r in document_reports(store)}


def _index(env) -> VectorIndex:
    return VectorIndex(connect(env["RAG_CHROMA_URL"]), env["RAG_CHROMA_COLLECTION"])


@pytest.mark.parametrize("instance", ["sqlite", "postgres"], indirect=True)
def test_a_batch_is_indexed_and_cataloged(instance, rag_env, corpus: Path, tmp_path: Path) -> None:
    files = [
        copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path / "in"),
        copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path / "in"),
        copy_corpus(corpus, "pdf/sf_pdflatex-4-pages.pdf", tmp_path / "in"),
    ]
    ids = add_files(instance, files)
    assert len(set(ids)) == 3 and ids[0].startswith("uns-norwich-city-")

    result = materialize(instance, ids)

    assert result.success
    reports = _reports(instance, rag_env)
    index = _index(rag_env)
    for doc_id in ids:
        report = reports[doc_id]
        assert report["status"] == "indexed", report
        assert all(s["state"] == "materialized" for s in report["stages"].values())
        assert report["chunks"] > 0
        assert index.count(doc_id) == report["chunks"]
    pdf = reports[ids[2]]["stages"]
    assert pdf["raw_document"]["metadata"]["media_type"] == "application/pdf"
    assert pdf["document_text"]["metadata"]["pages"] == 4
    assert pdf["chunk_embeddings"]["metadata"]["dimension"] == 384

    columns, rows = Catalog(DocumentStore(rag_env["RAG_DATA_DIR"])).query(
        "SELECT document_id, pages, chunks FROM documents ORDER BY document_id"
    )
    assert columns == ["document_id", "pages", "chunks"]
    assert {r[0]: r[2] for r in rows} == {i: reports[i]["chunks"] for i in ids}


def test_rematerializing_leaves_exactly_one_set_of_vectors(
    instance, rag_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    [doc] = add_files(instance, [copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path)])
    other = add_files(instance, [copy_corpus(corpus, "markdown/plumber_README.md", tmp_path)])[0]
    assert materialize(instance, [doc, other]).success
    index = _index(rag_env)
    before = index.count(doc)
    other_ids = index.ids_for(other)

    monkeypatch.setenv("RAG_CHUNK_SIZE", "100")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "10")
    assert materialize(instance, [doc]).success

    after = _reports(instance, rag_env)[doc]["chunks"]
    assert after > before, "smaller chunks, more of them"
    assert index.count(doc) == after, "stale vectors from the first run are gone"
    assert index.ids_for(doc) == {f"{doc}:{n}" for n in range(after)}
    assert index.ids_for(other) == other_ids, "another document's vectors are untouched"


@pytest.mark.parametrize("instance", ["sqlite", "postgres"], indirect=True)
def test_a_broken_document_does_not_fail_its_batch_mates(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    files = [
        copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path),
        copy_corpus(corpus, "pdf_problem/uns_password.pdf", tmp_path),
        copy_corpus(corpus, "markdown/uns_codeblock.md", tmp_path),
    ]
    ids = add_files(instance, files)

    result = materialize(instance, ids)

    assert not result.success, "the run reports that a document failed"
    reports = _reports(instance, rag_env)
    assert reports[ids[0]]["status"] == "indexed"
    assert reports[ids[2]]["status"] == "indexed"
    broken = reports[ids[1]]
    assert broken["status"] == "failed"
    assert broken["error"]["stage"] == "document_text"
    assert broken["error"]["code"] == "password_required"
    assert broken["stages"]["raw_document"]["state"] == "materialized"
    assert _index(rag_env).count(ids[1]) == 0


def test_one_stage_can_be_rerun_for_a_subset(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(
        instance,
        [
            copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path),
            copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path),
        ],
    )
    assert materialize(instance, ids).success
    first = _reports(instance, rag_env)[ids[0]]["stages"]

    result = materialize(instance, [ids[0]], stages=["chunk_embeddings", "vector_index"])

    assert result.success
    again = _reports(instance, rag_env)
    stages = again[ids[0]]["stages"]
    assert stages["document_text"]["materialized_at"] == first["document_text"]["materialized_at"]
    assert (
        stages["chunk_embeddings"]["materialized_at"] > first["chunk_embeddings"]["materialized_at"]
    )
    assert again[ids[0]]["status"] == "indexed"


def test_index_writes_wait_for_the_pool(instance, rag_env, corpus: Path, tmp_path: Path) -> None:
    [doc] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    finished = threading.Event()

    with index_write_slot(instance, "another-writer", "test"):
        worker = threading.Thread(target=lambda: (materialize(instance, [doc]), finished.set()))
        worker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stages = _reports(instance, rag_env)[doc]["stages"]
            if stages["chunk_embeddings"]["state"] == "materialized":
                break
            time.sleep(0.2)
        time.sleep(2)
        assert not finished.is_set(), "the run wrote the index while another writer held the pool"
        assert _index(rag_env).count(doc) == 0
        info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
        assert info.slot_count == 1
    worker.join(timeout=60)
    assert finished.is_set()
    assert _reports(instance, rag_env)[doc]["status"] == "indexed"


def test_a_slot_left_by_a_dead_run_is_taken_over(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    """A run worker killed while writing never frees its slot; its retry must not wait forever."""
    from dagster import DagsterRun, DagsterRunStatus

    [doc] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    holder = DagsterRun(
        job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
    )
    instance.add_run(holder)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(INDEX_WRITE_POOL)
    claim = storage.claim_concurrency_slot(INDEX_WRITE_POOL, holder.run_id, "ingest_documents")
    assert claim.is_claimed
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (materialize(instance, [doc]), finished.set()))
    worker.start()
    _wait_for_stage(instance, rag_env, doc, "chunk_embeddings")
    # Well past the dead-holder check: a holder whose run is still going keeps its slot.
    time.sleep(3 * DEAD_HOLDER_CHECK_SECONDS)
    assert not finished.is_set(), "the run took the slot from a writer that is still running"
    assert instance.get_run_by_id(holder.run_id).status == DagsterRunStatus.STARTED

    # What the code server reports when it finds the worker's process gone.
    instance.report_run_failed(instance.get_run_by_id(holder.run_id))
    worker.join(timeout=60)
    assert finished.is_set(), "the run still waits for the slot of a run that failed"
    assert _reports(instance, rag_env)[doc]["status"] == "indexed"
    info = storage.get_concurrency_info(INDEX_WRITE_POOL)
    assert not info.claimed_slots and not info.pending_steps


def test_a_slot_left_by_a_killed_api_process_is_taken_over(instance) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(INDEX_WRITE_POOL)
    live, dead = api_holder_id(), api_holder_id().replace(f"-{os.getpid()}-", f"-{gone.pid}-")
    assert storage.claim_concurrency_slot(INDEX_WRITE_POOL, live, "delete").is_claimed
    assert free_dead_holders(instance, "someone-else") == []
    storage.free_concurrency_slot_for_step(live, "delete")

    assert storage.claim_concurrency_slot(INDEX_WRITE_POOL, dead, "delete").is_claimed
    me, held = api_holder_id(), []

    def delete() -> None:
        with index_write_slot(instance, me, "delete"):
            held.extend(
                s.run_id for s in storage.get_concurrency_info(INDEX_WRITE_POOL).claimed_slots
            )

    worker = threading.Thread(target=delete, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert held == [me], "the slot of an API process that is gone was never freed"


@pytest.mark.parametrize("how", ["api", "partition_gone"])
@pytest.mark.parametrize("deleted", ["first", "last"])
def test_a_range_run_whose_end_document_was_deleted_runs_the_others(
    instance, rag_env, corpus: Path, deleted: str, how: str, monkeypatch
) -> None:
    """Dagster resolves a range run by its ends when it creates, starts or retries it: a
    queued run whose first or last document was deleted used to fail (or never start)."""
    data_dir = rag_env["RAG_DATA_DIR"]
    landing_dir = Path(data_dir) / "landing"
    for rel in (
        "markdown/haystack_sample.md",
        "markdown/uns_codeblock.md",
        "text/uns_norwich-city.txt",
    ):
        copy_corpus(corpus, rel, landing_dir)
    past = time.time() - 5
    for path in landing_dir.rglob("*"):
        os.utime(path, (past, past))
    [request] = sensor_tick(instance, data_dir).run_requests
    keys = request.tags[DOCUMENT_IDS_TAG].split(",")
    end = "start" if deleted == "first" else "end"
    gone = request.tags[f"dagster/asset_partition_range_{end}"]
    assert gone == (keys[0] if deleted == "first" else keys[-1])
    store = DocumentStore(data_dir)
    # The run loads the code location as a run worker would, with this test's settings; Dagster
    # keeps the last job it reconstructed, which belongs to an earlier test.
    monkeypatch.setattr("rag_pipeline.definitions.defs", definitions())
    ReconstructableJob.get_repository_definition.cache_clear()
    ReconstructableJob.get_definition.cache_clear()
    # The daemon creates the run from the sensor's request; it waits in the queue.
    job = ReconstructableRepository.for_module(
        "rag_pipeline.definitions", "defs", str(REPO)
    ).get_reconstructable_job("ingest_job")
    run = instance.create_run_for_job(
        defs.resolve_job_def("ingest_job"),
        tags=request.tags,
        job_code_origin=job.get_python_origin(),
    )
    DocumentsService(store).retire(gone, _index(rag_env), "deleted through the API")
    if how == "api":
        # What DELETE /documents/{id} does: the queued run still needs the partition.
        assert not release_partition(instance, store, gone)
        assert instance.has_dynamic_partition("documents", gone)
    else:
        # Removed all the same (by hand, or a race): the run falls back on the ids it names.
        instance.delete_dynamic_partition("documents", gone)
    assert find_report(store, gone).status == "deleted"

    result = execute_run(job, run, instance)
    assert result.success
    reports = _reports(instance, rag_env)
    assert gone not in reports
    assert {k: reports[k]["status"] for k in keys if k != gone} == {
        k: "indexed" for k in keys if k != gone
    }
    assert find_report(store, gone).status == "deleted"
    assert _index(rag_env).count(gone) == 0
    # The next sensor tick removes the partition, now that no run needs it.
    sensor_tick(instance, data_dir)
    assert not instance.has_dynamic_partition("documents", gone)
    assert find_report(store, gone).status == "deleted"


def test_a_deleted_document_uploaded_again_while_its_partition_is_kept_is_ingested(
    instance, rag_env, corpus: Path
) -> None:
    from dagster import DagsterRun

    data_dir = rag_env["RAG_DATA_DIR"]
    landing_dir = Path(data_dir) / "landing"
    source = copy_corpus(corpus, "markdown/haystack_sample.md", landing_dir)
    body = source.read_bytes()
    past = time.time() - 5
    os.utime(source, (past, past))
    [request] = sensor_tick(instance, data_dir).run_requests
    [key] = request.tags[DOCUMENT_IDS_TAG].split(",")
    store = DocumentStore(data_dir)
    instance.add_run(DagsterRun(job_name="ingest_job", tags=request.tags))  # queued
    DocumentsService(store).retire(key, _index(rag_env), "deleted through the API")
    assert not release_partition(instance, store, key)

    again = landing_dir / "again" / source.name
    again.parent.mkdir(parents=True)
    again.write_bytes(body)
    os.utime(again, (past, past))
    [retry] = sensor_tick(instance, data_dir).run_requests
    assert retry.tags[DOCUMENT_IDS_TAG] == key, "taken for a duplicate of the deleted document"
    assert materialize(instance, [key]).success
    assert _reports(instance, rag_env)[key]["status"] == "indexed"


def test_a_document_deleted_between_two_stages_is_dropped_not_failed(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    docs = add_files(
        instance,
        [
            copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path),
            copy_corpus(corpus, "markdown/uns_codeblock.md", tmp_path),
        ],
    )
    stages = ["raw_document", "document_text", "document_chunks", "chunk_embeddings"]
    assert materialize(instance, docs, stages=stages).success
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    DocumentsService(store).retire(docs[0], _index(rag_env), "deleted through the API")

    # The same run's next stage finds the deleted document's inputs gone.
    result = materialize(instance, docs, stages=["vector_index"])
    assert result.success, "a document deleted mid-run failed its run"
    assert find_report(store, docs[0]).status == "deleted"
    assert _reports(instance, rag_env)[docs[1]]["status"] == "indexed"
    assert _index(rag_env).count(docs[0]) == 0


def _wait_for_stage(instance, env, doc: str, stage: str) -> None:
    deadline = time.monotonic() + 60
    while _reports(instance, env)[doc]["stages"][stage]["state"] != "materialized":
        assert time.monotonic() < deadline, f"{doc} never reached {stage}"
        time.sleep(0.2)


@pytest.mark.parametrize("instance", ["sqlite", "postgres"], indirect=True)
def test_cli_status_and_sql_print_json_lines(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    code, out = run_cli(["status", "--json"])
    assert code == 0
    [queued] = [json.loads(line) for line in out.splitlines()]
    assert queued["id"] == ids[0] and queued["status"] == "queued"
    assert queued["filename"] == "haystack_sample.md"

    assert materialize(instance, ids).success
    code, out = run_cli(["status", ids[0], "--json"])
    record = json.loads(out)
    assert record["status"] == "indexed" and record["error"] is None
    assert set(record["stages"]) == {
        "raw_document",
        "document_text",
        "document_chunks",
        "chunk_embeddings",
        "vector_index",
    }
    code, out = run_cli(
        ["sql", "SELECT document_id, chunk_no FROM chunks ORDER BY chunk_no", "--json"]
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {"document_id": ids[0], "chunk_no": 0}
    assert len(rows) == record["chunks"]


def test_adding_the_same_bytes_twice_gives_the_same_id(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    path = copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)
    assert add_files(instance, [path]) == add_files(instance, [path])
    assert len(instance.get_dynamic_partitions("documents")) == 1
    code, _ = run_cli(["add", str(copy_corpus(corpus, "text/uns_empty.txt", tmp_path))])
    assert code == 1, "an empty file is refused"
    assert len(instance.get_dynamic_partitions("documents")) == 1


def test_a_new_version_replaces_the_old_only_once_it_is_indexed(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    service = DocumentsService(store)
    target = store.landing_dir / "handbook.md"
    target.parent.mkdir(parents=True)
    target.write_bytes((corpus / "markdown/haystack_sample.md").read_bytes())
    old = service.take_landing("handbook.md").document.id  # type: ignore[union-attr]
    instance.add_dynamic_partitions("documents", [old])
    assert materialize(instance, [old]).success
    assert (store.landing_dir / "processed" / "handbook.md").exists()

    target.write_bytes((corpus / "markdown/plumber_README.md").read_bytes())
    new = service.take_landing("handbook.md").document.id  # type: ignore[union-attr]
    instance.add_dynamic_partitions("documents", [new])
    index = _index(rag_env)
    assert index.count(old) > 0, "the old version stays searchable until the new one is indexed"
    assert materialize(instance, [new]).success

    assert index.count(old) == 0
    assert index.count(new) == _reports(instance, rag_env)[new]["chunks"]
    assert instance.get_dynamic_partitions("documents") == [new]
    _, out = run_cli(["status", old, "--json"])
    gone = json.loads(out)
    assert gone["status"] == "deleted" and gone["superseded_by"] == new


def test_status_lists_rejected_files(instance, rag_env, corpus: Path) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    store.landing_dir.mkdir(parents=True)
    (store.landing_dir / "blank.txt").write_bytes(b"   \n\t ")
    assert DocumentsService(store).take_landing("blank.txt").action == "rejected"

    _, out = run_cli(["status", "--json"])

    [rejected] = [json.loads(line) for line in out.splitlines()]
    assert rejected["status"] == "rejected" and rejected["filename"] == "blank.txt"
    assert rejected["error"]["code"] == "empty_file"
    code, out = run_cli(["status", rejected["id"], "--json"])
    assert code == 0 and json.loads(out)["status"] == "rejected"


def test_a_document_whose_run_waits_in_the_queue_is_queued_not_processing(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    from dagster import DagsterRunStatus

    from rag_pipeline.definitions import defs

    ids = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    job = defs.resolve_job_def("ingest_job")
    run = instance.create_run_for_job(
        job_def=job,
        tags={"dagster/partition": ids[0]},
        asset_selection=frozenset(job.asset_layer.executable_asset_keys),
    )
    assert run.status == DagsterRunStatus.NOT_STARTED
    report = _reports(instance, rag_env)[ids[0]]
    assert report["stages"]["raw_document"]["state"] == "pending"
    assert report["status"] == "queued"

    instance.report_run_canceled(run)
    assert materialize(instance, ids).success
    assert _reports(instance, rag_env)[ids[0]]["status"] == "indexed"


def test_documents_of_a_run_that_failed_for_good_read_failed_not_processing(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    from rag_pipeline.definitions import defs

    ids = add_files(instance, [copy_corpus(corpus, "pdf/sf_minimal-document.pdf", tmp_path)])
    stages = ["raw_document", "document_text", "document_chunks", "chunk_embeddings"]
    assert materialize(instance, ids, stages=stages).success
    assert _reports(instance, rag_env)[ids[0]]["status"] == "processing"
    # Then a run over it dies without any document failing on its own (its worker killed, or
    # the index unreachable past the step's retries), and the daemon decides not to retry it.
    run = instance.create_run_for_job(
        defs.resolve_job_def("ingest_job"), tags={"dagster/partition": ids[0]}
    )
    instance.report_run_failed(run)
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})
    assert _reports(instance, rag_env)[ids[0]]["status"] == "processing", "until reconciled"

    reconciled = reconcile(instance, DocumentStore(rag_env["RAG_DATA_DIR"]))

    assert reconciled["failed"] == ids
    report = _reports(instance, rag_env)[ids[0]]
    assert report["status"] == "failed"
    assert report["error"]["stage"] == "vector_index"
    assert report["error"]["code"] == "run_failed"
    assert report["stages"]["chunk_embeddings"]["state"] == "materialized"


def test_a_document_deleted_before_its_run_started_is_dropped_not_failed(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    from rag_pipeline.status import find_report

    files = [
        copy_corpus(corpus, "pdf/sf_minimal-document.pdf", tmp_path),
        copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path),
    ]
    gone, kept = add_files(instance, files)
    # The API's delete came after the sensor registered the file but before the daemon added
    # its partition: it removed the files and found no partition to remove.
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    retired = store.registry.retire(gone, "deleted through the API")
    assert retired is not None
    store.remove_files(retired)

    assert materialize(instance, [gone, kept]).success
    # The run named it as an end of its range, so its partition goes once the run is done: on
    # the sensor's next tick.
    assert find_report(store, gone).status == "deleted"
    release_deferred_partitions(instance, store)
    assert instance.get_dynamic_partitions("documents") == [kept]
    assert find_report(store, gone).status == "deleted"
    assert find_report(store, kept).status == "indexed"
