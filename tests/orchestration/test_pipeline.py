"""The ingestion chain on a real Dagster instance, real Chroma and real corpus files.

These use the deterministic hash embedder for speed; test_e2e_real_model.py uses the real one.
The index-write pool is in test_index_pool.py, documents deleted or queued around their runs
in test_run_lifecycle.py.
"""

import json
from pathlib import Path

import pytest
from support.pipeline import reports_by_id, vector_index
from support.runs import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore


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
    reports = reports_by_id(rag_env)
    index = vector_index(rag_env)
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
    index = vector_index(rag_env)
    before = index.count(doc)
    other_ids = index.ids_for(other)

    monkeypatch.setenv("RAG_CHUNK_SIZE", "100")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "10")
    assert materialize(instance, [doc]).success

    after = reports_by_id(rag_env)[doc]["chunks"]
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
    reports = reports_by_id(rag_env)
    assert reports[ids[0]]["status"] == "indexed"
    assert reports[ids[2]]["status"] == "indexed"
    broken = reports[ids[1]]
    assert broken["status"] == "failed"
    assert broken["error"]["stage"] == "document_text"
    assert broken["error"]["code"] == "password_required"
    assert broken["stages"]["raw_document"]["state"] == "materialized"
    assert vector_index(rag_env).count(ids[1]) == 0


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
    first = reports_by_id(rag_env)[ids[0]]["stages"]

    result = materialize(instance, [ids[0]], stages=["chunk_embeddings", "vector_index"])

    assert result.success
    again = reports_by_id(rag_env)
    stages = again[ids[0]]["stages"]
    assert stages["document_text"]["materialized_at"] == first["document_text"]["materialized_at"]
    assert (
        stages["chunk_embeddings"]["materialized_at"] > first["chunk_embeddings"]["materialized_at"]
    )
    assert again[ids[0]]["status"] == "indexed"


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
    index = vector_index(rag_env)
    assert index.count(old) > 0, "the old version stays searchable until the new one is indexed"
    assert materialize(instance, [new]).success

    assert index.count(old) == 0
    assert index.count(new) == reports_by_id(rag_env)[new]["chunks"]
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


def test_documents_indexed_in_groups_keep_their_own_outcomes(
    instance, rag_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    """Several groups per run, one of them holding a document that cannot be indexed: that one
    fails alone, the others are indexed and checked each against its own chunks."""
    from dagster import DagsterEventType

    from rag_pipeline.core.stages import indexing

    monkeypatch.setattr(indexing, "INDEX_GROUP_DOCUMENTS", 2)
    names = [
        "text/uns_norwich-city.txt",
        "markdown/haystack_sample.md",
        "markdown/uns_codeblock.md",
        "markdown/plumber_README.md",
        "text/chardet_windows-1252_dutch.txt",
    ]
    ids = add_files(instance, [copy_corpus(corpus, name, tmp_path) for name in names])
    stale = ids[2]
    embedded = ["raw_document", "document_text", "document_chunks", "chunk_embeddings"]
    assert materialize(instance, ids, stages=embedded).success
    monkeypatch.setenv("RAG_CHUNK_SIZE", "20")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "2")
    assert materialize(instance, [stale], stages=["document_chunks"]).success

    result = materialize(instance, ids, stages=["vector_index"])

    assert not result.success
    reports = reports_by_id(rag_env)
    index = vector_index(rag_env)
    assert reports[stale]["status"] == "failed"
    assert reports[stale]["error"]["code"] == "stale_embeddings"
    assert index.count(stale) == 0
    matched = {}
    for entry in instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        matched[evaluation.partition] = (evaluation.passed, evaluation.metadata)
    assert set(matched) == set(ids) - {stale}
    for doc_id in set(ids) - {stale}:
        assert reports[doc_id]["status"] == "indexed", reports[doc_id]
        assert index.count(doc_id) == reports[doc_id]["chunks"]
        passed, metadata = matched[doc_id]
        assert passed and metadata["vectors_in_index"].value == reports[doc_id]["chunks"]
