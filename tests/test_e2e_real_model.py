"""End to end with the real all-MiniLM-L6-v2 model: corpus files in, search results out.

One PDF, Markdown files and every text encoding in the corpus go through all five assets in one
batched run; a phrase copied from each document must come back at rank 1, from the right
document and page, through the `rag-pipeline search` command, in hybrid and lexical mode.
"""

import json
from pathlib import Path

import pytest
from conftest import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.store import DocumentStore
from rag_pipeline.status import document_reports

# (corpus file, phrase copied from it, page it is on, encoding the file is in)
CASES = [
    (
        "pdf/pdfminer_naacl06-shinyama.pdf",
        "To ensure that an article can have several different relations, we let each article "
        "belong to several different clusters.",
        3,
        None,
    ),
    (
        "markdown/plumber_README.md",
        "pdfplumber can extract text from any given page (including cropped and derived pages).",
        1,
        "utf-8",
    ),
    (
        "markdown/fpb_free-programming-books-zh.md",
        "语言无关 版本控制 沉浸式学 Git",
        1,
        "utf-8-sig",
    ),
    ("markdown/uns_umlauts-non-utf8.md", "können äöüß", 1, "iso-8859-1"),
    (
        "text/uns_norwich-city.txt",
        "Norwich Evening News to determine which Norwich legend would be inaugurated into the "
        "Professional Footballers' Association Centenary Hall of Fame",
        1,
        "utf-8",
    ),
    (
        "text/uns_fake-text-utf-16.txt",
        "Hamburgers are delicious. Dogs are the best. I love fuzzy blankets.",
        1,
        "utf-16",
    ),
    (
        "text/chardet_shift_jis_rashomon.txt",
        "下人が、羅生門の下で雨やみを待っていた。広い門の下には、この男の外に誰もいない。",
        1,
        "shift_jis",
    ),
    (
        "text/chardet_euc-kr_korean.txt",
        "대한민국에서는 조선이나 북조선이란 표현을 기피하며",
        1,
        "euc",
    ),
    ("pdf_intl/pdfjs_issue16063.pdf", "電線接続端子部が次のいずれにも該当しないとき", 1, None),
    (
        "text/chardet_windows-1252_dutch.txt",
        "O vreeselijk, vreeselijk! klaagde Stipan Arkadiewitsch weer en vond geen uitweg.",
        1,
        "cp1252",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize("instance", ["sqlite", "postgres"], indirect=True)
def test_corpus_documents_are_searchable_with_the_real_model(
    instance, real_model, corpus: Path, tmp_path: Path
) -> None:
    files = [copy_corpus(corpus, rel, tmp_path / "in") for rel, *_ in CASES]
    ids = add_files(instance, files)

    result = materialize(instance, ids)

    assert result.success, result.get_step_failure_events()
    reports = {r.id: r for r in document_reports(DocumentStore(real_model["RAG_DATA_DIR"]))}
    for doc_id, (rel, phrase, page, encoding) in zip(ids, CASES, strict=True):
        report = reports[doc_id]
        assert report.status == "indexed", (rel, report.error)
        text_meta = report.stages["document_text"].metadata
        if encoding:
            assert (
                str(text_meta["encoding"]).replace("_", "-").startswith(encoding.replace("_", "-"))
            ), rel
        embed_meta = report.stages["chunk_embeddings"].metadata
        assert embed_meta["model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert embed_meta["dimension"] == 384

        # Hybrid is the default; lexical alone must find a copied phrase too.
        for mode in ("hybrid", "lexical"):
            code, out = run_cli(["search", phrase, "--k", "3", "--mode", mode, "--json"])
            assert code == 0
            top = json.loads(out.splitlines()[0])
            assert (top["document_id"], top["page"]) == (doc_id, page), (rel, mode, top)
            assert top["filename"] == Path(rel).name
            assert top["score"] > 0.4
