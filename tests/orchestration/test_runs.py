"""Runs created outside the daemon (orchestration/run_requests.py), and what a run reports.

These pin the Dagster behaviour the run submitter relies on: a run created from an in-process code
location waits NOT_STARTED until it is submitted, carries the daemon's code location name (so
the daemon's queue starts it and run retries find its job), and its asset selection.
"""

from dagster import AssetKey, DagsterRunStatus
from support.runs import add_files, copy_corpus, definitions, materialize

from rag_pipeline.orchestration.runs.run_requests import (
    LOCATION,
    RunStatus,
    RunSubmitter,
    run_report,
)


def test_a_created_run_waits_until_submitted_and_names_the_daemons_location(
    instance, rag_env
) -> None:
    submitter = RunSubmitter(instance)
    try:
        stages = [AssetKey("document_chunks"), AssetKey("vector_index")]
        run_id = submitter.create("ingest_job", {"rag/source": "test"}, asset_selection=stages)
        run = instance.get_run_by_id(run_id)
        assert run.status == DagsterRunStatus.NOT_STARTED
        assert run.tags["rag/source"] == "test"
        assert run.asset_selection == frozenset(stages)
        assert run.remote_job_origin.location_name == LOCATION
        assert run.job_code_origin.repository_origin.code_pointer.module == (
            "rag_pipeline.definitions"
        )

        submitter.submit(run_id)
        # The queued coordinator holds it for the daemon.
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.QUEUED
        assert run_report(instance, run_id).status == RunStatus.queued

        kept = submitter.create("cleanup_job", {})
        submitter.discard(kept)
        assert instance.get_run_by_id(kept) is None
        submitter.discard(run_id)  # submitted: not the submitter's to forget
        assert instance.get_run_by_id(run_id) is not None
    finally:
        submitter.close()


def test_a_finished_run_reports_its_jobs_result_and_failure(
    instance, rag_env, backups, corpus, tmp_path
) -> None:
    cleanup = definitions().resolve_job_def("cleanup_job").execute_in_process(instance=instance)
    report = run_report(instance, cleanup.run_id)
    assert report is not None
    assert (report.job, report.status, report.error) == ("cleanup_job", RunStatus.succeeded, None)
    assert report.metadata["runs_deleted"] == 0 and "orphan_vectors_deleted" in report.metadata
    assert report.started_at and report.ended_at and report.created_at

    [good] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    [bad] = add_files(instance, [copy_corpus(corpus, "pdf_problem/uns_password.pdf", tmp_path)])
    result = materialize(instance, [good, bad])
    failed = run_report(instance, result.run_id)
    assert failed is not None and failed.status == RunStatus.failed
    assert failed.error is not None and "1 of 2 document(s) failed" in failed.error
    assert failed.metadata["failed"][bad]["code"] == "password_required"
    assert good not in failed.metadata["failed"]

    assert run_report(instance, "no-such-run") is None
