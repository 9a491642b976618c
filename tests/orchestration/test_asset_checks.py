"""The asset checks, as a real run records them on the instance: one evaluation per check and
document, passing for a sound document and failing, with its severity, for a bad one."""

from pathlib import Path

import pytest
from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterEventType
from support.runs import add_files, copy_corpus, materialize

from rag_pipeline.core.documents.reports import find_report
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration import checks

CHECKS = ("text_is_readable", "embedding_dimension", "vectors_match_chunks")


def _evaluations(instance, run_id: str) -> dict[tuple[str, str], AssetCheckEvaluation]:
    """(check, document) -> evaluation, from the run's events in the instance's event log."""
    found: dict[tuple[str, str], AssetCheckEvaluation] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        key = (evaluation.check_name, evaluation.partition)
        assert key not in found, f"{key} evaluated twice in one run"
        found[key] = evaluation
    return found


def _meta(evaluation: AssetCheckEvaluation) -> dict[str, object]:
    return {name: value.value for name, value in evaluation.metadata.items()}


def _misconverted(corpus: Path, folder: Path) -> Path:
    """The UDHR in many scripts, every sixth line UTF-8 read back as Latin-1 and saved again:
    the way a careless conversion spoils part of a file while the rest stays readable."""
    lines = (corpus / "text/uns_UDHR_first_article_all.txt").read_text("utf-8").splitlines()
    spoiled = [
        line.encode("utf-8").decode("latin-1") if n % 6 == 0 else line
        for n, line in enumerate(lines)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "udhr-misconverted.txt"
    target.write_text("\n".join(spoiled), "utf-8")
    return target


def test_every_check_is_evaluated_per_document_and_passes_for_sound_ones(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(
        instance,
        [
            copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path),
            copy_corpus(corpus, "pdf/sf_pdflatex-4-pages.pdf", tmp_path),
        ],
    )

    result = materialize(instance, ids)

    assert result.success
    evaluations = _evaluations(instance, result.run_id)
    assert set(evaluations) == {(check, doc) for check in CHECKS for doc in ids}
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    index = VectorIndex(connect(rag_env["RAG_CHROMA_URL"]), rag_env["RAG_CHROMA_COLLECTION"])
    for doc in ids:
        for check in CHECKS:
            assert evaluations[check, doc].passed, (check, doc, _meta(evaluations[check, doc]))
        readable = _meta(evaluations["text_is_readable", doc])
        assert (
            readable["chars"] == find_report(store, doc).stages["document_text"].metadata["chars"]
        )
        assert readable["garbled_share"] == 0.0
        dimension = _meta(evaluations["embedding_dimension", doc])
        # hash-384: the test environment's model, 384 wide; its vectors are unit length.
        assert (dimension["dimension"], dimension["expected"]) == (384, 384)
        assert dimension["min_norm"] == pytest.approx(1.0, abs=1e-3)
        matched = _meta(evaluations["vectors_match_chunks", doc])
        assert matched == {"vectors_in_index": index.count(doc), "chunks": index.count(doc)}
        assert matched["chunks"] == find_report(store, doc).chunks


def test_a_partly_garbled_text_warns_but_is_indexed(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    [doc] = add_files(instance, [_misconverted(corpus, tmp_path)])

    result = materialize(instance, [doc])

    assert result.success, "a warning does not fail the document"
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    assert find_report(store, doc).status == "indexed"
    readable = _evaluations(instance, result.run_id)["text_is_readable", doc]
    assert not readable.passed
    assert readable.severity == AssetCheckSeverity.WARN
    meta = _meta(readable)
    assert meta["warn_above"] < meta["garbled_share"] < meta["fail_above"], meta
    assert meta["chars"] > 0


def test_an_index_missing_vectors_of_a_document_fails_the_count_check(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    """The run writes and counts under its own control, so a loss shows only afterwards: the
    check's verdict on what the index holds once some of the document's vectors are gone."""
    [doc] = add_files(instance, [copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path)])
    assert materialize(instance, [doc]).success
    chunks = find_report(DocumentStore(rag_env["RAG_DATA_DIR"]), doc).chunks
    client = connect(rag_env["RAG_CHROMA_URL"])
    index = VectorIndex(client, rag_env["RAG_CHROMA_COLLECTION"])
    lost = sorted(index.ids_for(doc))[:2]
    client.get_collection(rag_env["RAG_CHROMA_COLLECTION"]).delete(ids=lost)

    evaluation = checks.vectors_match_chunks(doc, index.count(doc), chunks)

    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert _meta(evaluation) == {"vectors_in_index": chunks - 2, "chunks": chunks}
    # Re-running the index stage alone restores them, and its check says so.
    again = materialize(instance, [doc], stages=["vector_index"])
    assert again.success
    healed = _evaluations(instance, again.run_id)
    assert set(healed) == {("vectors_match_chunks", doc)}
    assert healed["vectors_match_chunks", doc].passed
    assert _meta(healed["vectors_match_chunks", doc])["vectors_in_index"] == chunks


@pytest.mark.parametrize(("dimension", "min_norm"), [(383, 1.0), (384, 0.5)])
def test_vectors_of_the_wrong_width_or_length_fail_the_dimension_check(
    dimension: int, min_norm: float
) -> None:
    evaluation = checks.embedding_dimension("doc", dimension, 384, min_norm)
    assert not evaluation.passed
    assert evaluation.severity == AssetCheckSeverity.ERROR
