"""`rag-pipeline reprocess` and `rag-pipeline retry --failed`: the runs they queue (the daemon
starts them, as it does the API's; see
tests/orchestration/maintenance/test_operations_daemon.py)."""

import contextlib
import io
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterRunStatus
from support.runs import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.storage.data_dir import DocumentStore


def test_reprocess_and_retry_queue_runs_and_say_which(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    paths = [
        copy_corpus(corpus, rel, tmp_path)
        for rel in ("markdown/haystack_sample.md", "text/uns_norwich-city.txt")
    ]
    first, second = add_files(instance, paths)
    assert materialize(instance, [first, second]).success

    code, out = run_cli(["reprocess", first, "--chunk-size", "40"])
    assert code == 0
    doc_id, run_id, where = out.strip().split("\t")
    assert (doc_id, where) == (first, "from document_chunks")
    run = instance.get_run_by_id(run_id)
    assert run.status == DagsterRunStatus.QUEUED and AssetKey("raw_document") not in (
        run.asset_selection or set()
    )
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    assert store.registry.reads.get(first).chunk_size == 40

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code, _ = run_cli(["reprocess", "nope-1", first, "--chunk-overlap", "-1"])
    assert code == 1
    assert "nope-1" in errors.getvalue() and "chunk_overlap" in errors.getvalue()

    store.registry.projection.stage_failed(
        second, "vector_index", "lost", "run_failed", "worker lost"
    )
    code, out = run_cli(["retry", "--failed"])
    assert code == 0
    [line] = out.strip().splitlines()
    retry_run, where, docs = line.split("\t")
    assert (where, docs) == ("from vector_index", second)
    assert instance.get_run_by_id(retry_run).tags["rag/source"] == "retry"
    with pytest.raises(SystemExit):
        run_cli(["retry"])
