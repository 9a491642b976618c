"""Every Office, OpenDocument, EPUB, HTML, RTF, image and scanned file of the corpus through the
real pipeline: each ends indexed, its phrase from PHRASES.tsv the top hit in lexical and hybrid
search, citing its page (slide, sheet); a damaged file of each format fails alone.

The hash embedder stands in for the model (test_e2e_real_model.py's case for these formats
runs the real one), so the hybrid ranking here rests on its lexical half.
"""

import json
import unicodedata
from pathlib import Path

import pytest
from support.runs import add_files, copy_corpus, materialize, run_cli

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.stages.extract import LOW_CONFIDENCE
from rag_pipeline.core.storage.catalog import read_text_pages
from rag_pipeline.core.storage.data_dir import DocumentStore

FOLDERS = ("office", "html", "scanned")


def corpus_phrases(corpus: Path) -> dict[str, str]:
    rows = [line.split("\t") for line in (corpus / "PHRASES.tsv").read_text().splitlines()[1:]]
    return {rel: phrase for rel, phrase, _ in rows if rel.split("/")[0] in FOLDERS}


def damaged_copies(corpus: Path, dest: Path) -> list[Path]:
    """One file of each format, cut short (HTML: binary bytes inside, since browsers and
    readers take a truncated page as it is)."""
    dest.mkdir(parents=True)
    made = []
    for rel in (
        "office/markitdown_test.docx",
        "office/markitdown_test.pptx",
        "office/uns_2023-half-year-analyses-by-segment.xlsx",
        "office/docling_text_document_01.odt",
        "office/uns_winter-sports.epub",
        "office/tika_testRTFJapanese.rtf",
        "scanned/ocrmypdf_typewriter.png",
        "scanned/uns_double-column-A.jpg",
        "scanned/tesstest_8087_054.3B.tif",
    ):
        data = (corpus / rel).read_bytes()
        target = dest / f"damaged-{Path(rel).name}"
        target.write_bytes(data[: len(data) // 2])
        made.append(target)
    html = (corpus / "html/readability_mercurial.html").read_bytes()
    (target := dest / "damaged-page.html").write_bytes(html[:300] + bytes(4096))
    return [*made, target]


def flat(text: str) -> str:
    """Text as a phrase is looked for in it: spaces collapsed, case and accents folded (OCR
    reads "marrón rápido" as "marron rapido")."""
    bare = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def search(query: str, mode: str) -> dict:
    code, out = run_cli(["search", query, "--k", "3", "--mode", mode, "--json"])
    assert code == 0
    lines = out.splitlines()
    assert lines, (query, mode, "no hit")
    return json.loads(lines[0])


def test_every_new_format_is_indexed_and_found_and_damaged_files_fail_alone(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    phrases = corpus_phrases(corpus)
    assert len(phrases) == 37, "PHRASES.tsv names one phrase for each file of the folders"
    rels = sorted(phrases)
    files = [copy_corpus(corpus, rel, tmp_path / "in" / rel.split("/")[0]) for rel in rels]
    damaged = damaged_copies(corpus, tmp_path / "damaged")
    ids = add_files(instance, files + damaged)
    by_rel = dict(zip(rels, ids, strict=False))

    result = materialize(instance, ids)

    assert not result.success  # the damaged ones fail; nothing else does
    reports = {r.id: r for r in document_reports(DocumentStore(rag_env["RAG_DATA_DIR"]))}
    for path, doc_id in zip(damaged, ids[len(rels) :], strict=True):
        report = reports[doc_id]
        assert report.status == "failed", path.name
        assert report.error is not None
        assert (report.error.stage, report.error.code) == ("document_text", "damaged_document")
        assert 10 < len(report.error.message) < 200 and "\n" not in report.error.message
    for rel, doc_id in by_rel.items():
        report = reports[doc_id]
        assert report.status == "indexed", (rel, report.error)
        meta = report.stages["document_text"].metadata
        assert meta["ocr"] is rel.startswith("scanned/"), rel
        if meta["ocr"]:
            assert meta["ocr_pages"] == list(range(1, meta["pages"] + 1)), rel
            assert len(meta["ocr_confidence"]) == meta["pages"]
            assert meta["ocr_low_confidence_pages"] == [
                page
                for page, confidence in zip(meta["ocr_pages"], meta["ocr_confidence"], strict=True)
                if confidence < LOW_CONFIDENCE
            ]

    # The page (slide, sheet) cited must be one whose extracted text holds the phrase; a
    # one-page scan whose OCR misread a character of it (倣 as 伏) has only the one page.
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    holding = {}
    for rel, phrase in phrases.items():
        pages = read_text_pages(store, by_rel[rel])
        found = [page for page, text in pages if flat(phrase) in flat(text)]
        holding[rel] = found or ([pages[0][0]] if len(pages) == 1 else [])
    assert all(holding.values()), [rel for rel, pages in holding.items() if not pages]
    for rel, phrase in phrases.items():
        for mode in ("lexical", "hybrid"):
            top = search(phrase, mode)
            assert top["document_id"] == by_rel[rel], (rel, mode, top["filename"], top["text"])
            assert top["page"] in holding[rel], (rel, mode, top["page"], holding[rel])
    # A hit cites the slide and the sheet.
    assert search("This is a nested shape with content in 2 shapes", "lexical")["page"] == 5
    assert search("Stanley Cups Since 67", "lexical")["page"] == 2


@pytest.mark.parametrize("rel", ["office/uns_stanley-cups.xlsx"])
def test_a_sheet_row_stays_in_one_chunk_with_its_header(
    instance, rag_env, corpus: Path, tmp_path: Path, rel: str
) -> None:
    [doc] = add_files(
        instance, [copy_corpus(corpus, rel, tmp_path)], chunk_size=24, chunk_overlap=0
    )
    assert materialize(instance, [doc]).success
    top = search("Maple Leafs TOR 13", "lexical")
    assert "Team: Maple Leafs | Location: TOR | Stanley Cups: 13" in top["text"]
    assert top["page"] == 1
