"""End to end with the real all-MiniLM-L6-v2 model: corpus files in, search results out.

One PDF, Markdown files and every text encoding in the corpus go through all five assets in one
batched run; a phrase copied from each document must come back at rank 1, from the right
document and page, through the `rag-pipeline search` command, in hybrid and lexical mode.
"""

import codecs
import json
from pathlib import Path

import numpy as np
import pytest
from support.runs import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.retrieval.vector_index import connect
from rag_pipeline.core.stages.embedders import bundled_model_dir
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

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
        "`pdfplumber` can extract text from any given page (including cropped and derived pages).",
        1,
        "utf-8",
    ),
    (
        "markdown/fpb_free-programming-books-zh.md",
        "[猴子都能懂的GIT入门](http://backlogtool.com/git-guide/cn/) - Nulab Inc.",
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
        "- Hamburgers are delicious\n   - Dogs are the best\n   - I love fuzzy blankets",
        1,
        "utf-16-le",
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
        "euc-kr",
    ),
    ("pdf_intl/pdfjs_issue16063.pdf", "電線接続端子部が次のいずれにも該当しないとき", 1, None),
    (
        "text/chardet_windows-1252_dutch.txt",
        '"O vreeseljjk, vreeselijk!" klaagde Stipan Arkadiewitsch weer en vond geen uitweg.',
        1,
        "cp1252",
    ),
]


def _words(text: str) -> str:
    """The text without its whitespace, which line wrapping and CJK spacing make arbitrary."""
    return "".join(text.split())


def _model_vector(text: str) -> np.ndarray:
    """The text embedded by sentence-transformers itself, from the bundled model's files."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_dir()), device="cpu", local_files_only=True)
    assert model.get_embedding_dimension() == 384, "all-MiniLM-L6-v2 is 384 wide"
    return np.asarray(model.encode([text], normalize_embeddings=True)[0])


# PostgreSQL storage holds nothing model-specific: test_pipeline.py runs it with hash-384.
@pytest.mark.e2e
def test_corpus_documents_are_searchable_with_the_real_model(
    instance, real_model, corpus: Path, tmp_path: Path
) -> None:
    files = [copy_corpus(corpus, rel, tmp_path / "in") for rel, *_ in CASES]
    ids = add_files(instance, files)

    result = materialize(instance, ids)

    assert result.success, result.get_step_failure_events()
    store = DocumentStore(real_model["RAG_DATA_DIR"])
    reports = {r.id: r for r in document_reports(store)}
    for doc_id, (rel, phrase, page, encoding) in zip(ids, CASES, strict=True):
        report = reports[doc_id]
        assert report.status == "indexed", (rel, report.error)
        text_meta = report.stages["document_text"].metadata
        if encoding:
            assert codecs.lookup(str(text_meta["encoding"])).name == codecs.lookup(encoding).name

        # Hybrid is the default; lexical alone must find a copied phrase too.
        for mode in ("hybrid", "lexical"):
            code, out = run_cli(["search", phrase, "--k", "3", "--mode", mode, "--json"])
            assert code == 0
            top = json.loads(out.splitlines()[0])
            assert (top["document_id"], top["page"]) == (doc_id, page), (rel, mode, top)
            assert top["filename"] == Path(rel).name
            assert _words(phrase) in _words(top["text"]), (rel, mode, top["text"])

    # The vectors are the model's: a stored chunk's vector is the one sentence-transformers
    # gives its text, whatever the pipeline reports as its model.
    _, rows = Catalog(store).query(
        "SELECT text FROM chunks WHERE document_id = ? AND chunk_no = 0", [ids[0]]
    )
    index = connect(real_model["RAG_CHROMA_URL"]).get_collection(
        real_model["RAG_CHROMA_COLLECTION"]
    )
    stored = index.get(ids=[f"{ids[0]}:0"], include=["embeddings"])["embeddings"][0]
    assert float(np.dot(stored, _model_vector(rows[0][0]))) == pytest.approx(1.0, abs=1e-4)


# (corpus file, phrase from PHRASES.tsv, the page, slide or sheet it is on)
FORMAT_CASES = [
    ("office/docling_word_sample.docx", "Here are some interesting things a respectful duck", 1),
    ("office/markitdown_test.pptx", "This is a nested shape with content in 2 shapes", 5),
    ("office/uns_stanley-cups.xlsx", "Stanley Cups Since 67", 2),
    ("html/readability_mercurial.html", "Once you have mastered the art of mutable history", 1),
    ("scanned/ocrmypdf_typewriter.png", "Alles aan de kook brengen", 1),
    ("scanned/uns_english-and-korean.png", "안녕하세요, 저희는", 1),
]


@pytest.mark.e2e
def test_office_web_and_scanned_documents_are_searchable_with_the_real_model(
    instance, real_model, corpus: Path, tmp_path: Path
) -> None:
    files = [copy_corpus(corpus, rel, tmp_path / "in") for rel, *_ in FORMAT_CASES]
    ids = add_files(instance, files)

    result = materialize(instance, ids)

    assert result.success, result.get_step_failure_events()
    for doc_id, (rel, phrase, page) in zip(ids, FORMAT_CASES, strict=True):
        for mode in ("hybrid", "lexical"):
            code, out = run_cli(["search", phrase, "--k", "3", "--mode", mode, "--json"])
            assert code == 0
            top = json.loads(out.splitlines()[0])
            assert (top["document_id"], top["page"]) == (doc_id, page), (rel, mode, top)
            assert _words(phrase) in _words(top["text"]), (rel, mode, top["text"])
