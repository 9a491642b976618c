"""Lexical data through the real pipeline: written with the chunks, published with the vectors,
replaced and deleted with them; and every search mode over it, from the CLI.

The hash embedder stands in for the model here (its dense ranking is noise), so these check
what lexical search adds; test_e2e_real_model.py and the API end-to-end test use the model.
"""

import json
from pathlib import Path

from support.runs import add_files, copy_corpus, materialize, run_cli

from bench.harness.processes import free_port
from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.terms import analyze
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.catalog import read_chunks
from rag_pipeline.core.storage.data_dir import DocumentStore

KOREAN = "text/chardet_euc-kr_korean.txt"
JAPANESE = "pdf_intl/pdfjs_issue16063.pdf"
ENGLISH = "text/uns_norwich-city.txt"


def _search(query: str, mode: str, k: int = 5) -> list[dict]:
    code, out = run_cli(["search", query, "--mode", mode, "--k", str(k), "--json"])
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_cjk_phrases_rank_first_in_lexical_and_hybrid_search(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    files = [copy_corpus(corpus, rel, tmp_path / "in") for rel in (KOREAN, JAPANESE, ENGLISH)]
    korean, japanese, english = ids = add_files(instance, files)
    assert materialize(instance, ids).success
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    reports = {r.id: r for r in document_reports(store)}
    for doc in ids:
        assert store.artifact_path("lexical", doc).exists()
        assert reports[doc].stages["document_chunks"].metadata["distinct_terms"] > 0

    for phrase, doc in (
        ("자국을 조선", korean),
        ("電線接続端子部", japanese),
        ("ねじなし端子", japanese),
        ("Watford as a trainee", english),
    ):
        for mode in ("lexical", "hybrid"):
            [best, *_] = _search(phrase, mode)
            assert best["document_id"] == doc, (phrase, mode)
            assert phrase in best["text"], (phrase, mode)
            assert best["filename"] == Path(files[ids.index(doc)]).name
            assert best["char_end"] > best["char_start"] >= 0 and best["page"] >= 1
    assert _search("zyzzyva quux", "lexical") == []
    assert len(_search("Football Club", "dense")) == 5


def test_rechunking_replaces_the_lexical_data_and_deleting_removes_it(
    instance, rag_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    [doc] = add_files(instance, [copy_corpus(corpus, ENGLISH, tmp_path)])
    assert materialize(instance, [doc]).success
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    lexicon = LexicalIndex(store)
    first = lexicon.chunk_count
    assert first == len(read_chunks(store, doc))
    [before] = _search("Watford as a trainee", "hybrid", k=1)

    monkeypatch.setenv("RAG_CHUNK_SIZE", "60")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "0")
    assert materialize(instance, [doc]).success

    chunks = read_chunks(store, doc)
    assert lexicon.chunk_count == len(chunks) > first, "the new chunking, and only it"
    # Exactly the new chunks that hold the word: none missing, none left from before. Some
    # have numbers the first chunking never had, so the old terms could not stand in for them.
    by_no = {c.chunk_no: c.text for c in chunks}
    [term] = analyze("Norwich")
    holding = {no for no, text in by_no.items() if term in analyze(text)}
    assert max(holding) >= first
    assert {h.chunk_no for h in lexicon.query("Norwich", 1000)} == holding
    # Search cites the new chunks, not the ones it read (and cached) before.
    [after] = _search("Watford as a trainee", "hybrid", k=1)
    assert after["text"] == by_no[after["chunk_no"]] != before["text"]

    # With the vector index down, hybrid search answers from lexical data; dense cannot.
    monkeypatch.setenv("RAG_CHROMA_URL", f"http://127.0.0.1:{free_port()}")
    assert _search("Watford as a trainee", "hybrid", k=1)[0]["text"] == after["text"]
    assert run_cli(["search", "Watford", "--mode", "dense"])[0] == 1

    # What DELETE /documents/{id} does (the API tests delete through HTTP).
    index = VectorIndex(connect(rag_env["RAG_CHROMA_URL"]), rag_env["RAG_CHROMA_COLLECTION"])
    DocumentsService(store).retire(doc, index, "deleted")
    assert lexicon.query("Norwich", 10) == []
    assert lexicon.chunk_count == 0
    assert not store.artifact_path("terms", doc).exists()
