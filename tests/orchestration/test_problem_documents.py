"""Every damaged PDF in the corpus, in one batch through the real pipeline.

Each ends failed at `document_text` with its code and a readable one-line message, or is
recovered and indexed; a healthy batch-mate is indexed regardless; nothing hangs the run.
"""

from pathlib import Path

from support.corpus_tables import PROBLEM_PDFS
from support.runs import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.storage.data_dir import DocumentStore


def test_damaged_pdfs_fail_with_their_code_and_spare_their_batch_mates(
    instance, rag_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    # The pathologically slow page takes ~10 s; a short bound proves the timeout path.
    monkeypatch.setenv("RAG_EXTRACTION_TIMEOUT_SECONDS", "3")
    names = [n for n, (code, _) in PROBLEM_PDFS.items() if code != "empty_file"]
    files = [copy_corpus(corpus, f"pdf_problem/{n}", tmp_path) for n in names]
    files.append(copy_corpus(corpus, "pdf/sf_minimal-document.pdf", tmp_path))
    ids = add_files(instance, files)

    result = materialize(instance, ids)

    assert not result.success
    reports = {r.id: r for r in document_reports(DocumentStore(rag_env["RAG_DATA_DIR"]))}
    for name, doc_id in zip([*names, "sf_minimal-document.pdf"], ids, strict=True):
        report = reports[doc_id]
        expected = PROBLEM_PDFS.get(name, ("ok", ""))[0]
        if expected == "ok":
            assert report.status == "indexed", (name, report.error)
            assert report.chunks and report.chunks > 0
            continue
        assert report.status == "failed", name
        assert report.error is not None
        assert (report.error.stage, report.error.code) == ("document_text", expected), name
        assert 10 < len(report.error.message) < 200 and "\n" not in report.error.message, name
        assert "Traceback" not in report.error.message


def test_an_empty_file_is_refused_before_it_becomes_a_partition(
    instance, rag_env, corpus: Path, tmp_path: Path, capsys
) -> None:
    code, _ = run_cli(["add", str(copy_corpus(corpus, "pdf_problem/plumber_empty.pdf", tmp_path))])
    assert code == 1
    assert "empty_file" in capsys.readouterr().err
    assert instance.get_dynamic_partitions("documents") == []
