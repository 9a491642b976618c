"""Documents deleted, re-uploaded, queued or orphaned around their runs, on a real instance:
each ends in the status its user expects, and its batch mates are ingested all the same."""

import os
import time
from pathlib import Path

import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.execution.api import execute_run
from support.env import REPO
from support.pipeline import reports_by_id, vector_index
from support.runs import add_files, copy_corpus, definitions, materialize, sensor_tick

from rag_pipeline.core.documents.reports import find_report
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import (
    DOCUMENT_IDS_TAG,
    release_deferred_partitions,
    release_partition,
)
from rag_pipeline.orchestration.runs.reconcile import reconcile


@pytest.mark.parametrize("how", ["api", "partition_gone"])
@pytest.mark.parametrize("deleted", ["first", "last"])
def test_a_range_run_whose_end_document_was_deleted_runs_the_others(
    instance, rag_env, corpus: Path, deleted: str, how: str, monkeypatch
) -> None:
    """Dagster resolves a range run by its ends when it creates, starts or retries it: a
    queued run whose first or last document was deleted used to fail (or never start)."""
    # The run reconstructs the module's `defs`, built at its first import from the settings
    # of that moment: rebuilt here from this test's data dir, as a code server would, and not
    # taken from Dagster's process-wide cache of the last job it reconstructed.
    monkeypatch.setattr("rag_pipeline.definitions.defs", definitions())
    ReconstructableJob.get_repository_definition.cache_clear()
    ReconstructableJob.get_definition.cache_clear()
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
    # The daemon creates the run from the sensor's request; it waits in the queue.
    job = ReconstructableRepository.for_module(
        "rag_pipeline.definitions", "defs", str(REPO)
    ).get_reconstructable_job("ingest_job")
    run = instance.create_run_for_job(
        definitions().resolve_job_def("ingest_job"),
        tags=request.tags,
        job_code_origin=job.get_python_origin(),
    )
    DocumentsService(store).retire(gone, vector_index(rag_env), "deleted through the API")
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
    reports = reports_by_id(rag_env)
    assert gone not in reports
    assert {k: reports[k]["status"] for k in keys if k != gone} == {
        k: "indexed" for k in keys if k != gone
    }
    assert find_report(store, gone).status == "deleted"
    assert vector_index(rag_env).count(gone) == 0
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
    DocumentsService(store).retire(key, vector_index(rag_env), "deleted through the API")
    assert not release_partition(instance, store, key)

    again = landing_dir / "default" / source.name  # the default collection's folder
    again.parent.mkdir(parents=True)
    again.write_bytes(body)
    os.utime(again, (past, past))
    [retry] = sensor_tick(instance, data_dir).run_requests
    assert retry.tags[DOCUMENT_IDS_TAG] == key, "taken for a duplicate of the deleted document"
    assert materialize(instance, [key]).success
    assert reports_by_id(rag_env)[key]["status"] == "indexed"


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
    DocumentsService(store).retire(docs[0], vector_index(rag_env), "deleted through the API")

    # The same run's next stage finds the deleted document's inputs gone.
    result = materialize(instance, docs, stages=["vector_index"])
    assert result.success, "a document deleted mid-run failed its run"
    assert find_report(store, docs[0]).status == "deleted"
    assert reports_by_id(rag_env)[docs[1]]["status"] == "indexed"
    assert vector_index(rag_env).count(docs[0]) == 0


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
    report = reports_by_id(rag_env)[ids[0]]
    assert report["stages"]["raw_document"]["state"] == "pending"
    assert report["status"] == "queued"

    instance.report_run_canceled(run)
    assert materialize(instance, ids).success
    assert reports_by_id(rag_env)[ids[0]]["status"] == "indexed"


def test_documents_of_a_run_that_failed_for_good_read_failed_not_processing(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    from rag_pipeline.definitions import defs

    ids = add_files(instance, [copy_corpus(corpus, "pdf/sf_minimal-document.pdf", tmp_path)])
    stages = ["raw_document", "document_text", "document_chunks", "chunk_embeddings"]
    assert materialize(instance, ids, stages=stages).success
    assert reports_by_id(rag_env)[ids[0]]["status"] == "processing"
    # Then a run over it dies without any document failing on its own (its worker killed, or
    # the index unreachable past the step's retries), and the daemon decides not to retry it.
    run = instance.create_run_for_job(
        defs.resolve_job_def("ingest_job"), tags={"dagster/partition": ids[0]}
    )
    instance.report_run_failed(run)
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})
    assert reports_by_id(rag_env)[ids[0]]["status"] == "processing", "until reconciled"

    reconciled = reconcile(instance, DocumentStore(rag_env["RAG_DATA_DIR"]))

    assert reconciled["failed"] == ids
    report = reports_by_id(rag_env)[ids[0]]
    assert report["status"] == "failed"
    assert report["error"]["stage"] == "vector_index"
    assert report["error"]["code"] == "run_failed"
    assert report["stages"]["chunk_embeddings"]["state"] == "materialized"


def test_a_document_deleted_before_its_run_started_is_dropped_not_failed(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    from rag_pipeline.core.documents.reports import find_report

    files = [
        copy_corpus(corpus, "pdf/sf_minimal-document.pdf", tmp_path),
        copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path),
    ]
    gone, kept = add_files(instance, files)
    # The API's delete came after the sensor registered the file but before the daemon added
    # its partition: it removed the files and found no partition to remove.
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    retired = store.registry.lifecycle.retire(gone, "deleted through the API")
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


def test_a_document_deleted_between_its_claim_and_its_runs_creation_keeps_the_sensor_going(
    instance, rag_env, corpus: Path, monkeypatch
) -> None:
    """The sensor claims documents and asks for a range run; the daemon adds the partitions,
    then creates the run. A DELETE in between used to remove the range's end partition, so
    Dagster refused to create the run and retried that tick for ever: ingestion stopped (the
    load test's two tenants saw 95 documents stay queued)."""
    monkeypatch.setattr("rag_pipeline.definitions.defs", definitions())
    ReconstructableJob.get_repository_definition.cache_clear()
    ReconstructableJob.get_definition.cache_clear()
    data_dir = rag_env["RAG_DATA_DIR"]
    landing_dir = Path(data_dir) / "landing"
    for rel in ("markdown/haystack_sample.md", "text/uns_norwich-city.txt"):
        copy_corpus(corpus, rel, landing_dir)
    past = time.time() - 5
    for path in landing_dir.rglob("*"):
        os.utime(path, (past, past))
    [request] = sensor_tick(instance, data_dir).run_requests
    gone = request.tags["dagster/asset_partition_range_end"]
    kept = request.tags["dagster/asset_partition_range_start"]
    store = DocumentStore(data_dir)

    # DELETE /documents/{id} before the daemon got to create the run: the partition stays.
    DocumentsService(store).retire(gone, vector_index(rag_env), "deleted through the API")
    assert not release_partition(instance, store, gone)
    assert instance.has_dynamic_partition("documents", gone)

    job = ReconstructableRepository.for_module(
        "rag_pipeline.definitions", "defs", str(REPO)
    ).get_reconstructable_job("ingest_job")
    run = instance.create_run_for_job(  # raised "not a valid range" when the end was gone
        definitions().resolve_job_def("ingest_job"),
        tags=request.tags,
        job_code_origin=job.get_python_origin(),
    )
    assert execute_run(job, run, instance).success
    assert find_report(store, kept).status == "indexed"
    assert find_report(store, gone).status == "deleted"
    # Its run is done: the next tick removes the partition.
    sensor_tick(instance, data_dir)
    assert not instance.has_dynamic_partition("documents", gone)
