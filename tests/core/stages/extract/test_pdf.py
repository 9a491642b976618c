"""PDFs: every good corpus PDF reads, every problem PDF fails with its code or recovers."""

import io

import pypdf
import pytest
from pypdf import PdfReader
from support.corpus_tables import INTL_PDFS, PDFS, PROBLEM_PDFS, PYPDF_VERSION, files_in, read
from support.extraction import WARN_SHARE, assert_no_child_left, assert_readable_message

from rag_pipeline.core.stages.extract import (
    MEDIA_PDF,
    ExtractionError,
    extract,
    extract_document,
    garbled_share,
)


def test_the_tables_cover_every_pdf() -> None:
    assert files_in("pdf") == set(PDFS)
    assert files_in("pdf_problem") == set(PROBLEM_PDFS)
    assert files_in("pdf_intl") == set(INTL_PDFS)


def test_ligatures_in_a_real_pdf_are_unfolded() -> None:
    rel = "pdf/uns_layout-parser-paper-with-empty-pages.pdf"
    raw = PdfReader(io.BytesIO(read(rel)), strict=False).pages[0].extract_text()
    assert "Uni\ufb01ed" in raw
    result = extract(read(rel), "layout.pdf")
    assert "LayoutParser: A Unified Toolkit" in result.text
    assert "\ufb01" not in result.text


def test_tex_spacing_accents_join_their_letters() -> None:
    dpr = extract(read("pdf/uns_multi-column.pdf"), "dpr.pdf").text
    assert "Barlas Oğuz" in dpr and "Baudiš" in dpr  # pypdf gives "O˘guz", "Baudiˇs"
    assert "˘" not in dpr and "ˇ" not in dpr


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PDFS))
def test_every_good_pdf_extracts(name: str) -> None:
    pages, phrase = PDFS[name]
    result = extract_document(read(f"pdf/{name}"), name)
    assert result.media_type == MEDIA_PDF and result.encoding is None
    assert result.page_count == pages
    assert [page.number for page in result.pages] == list(range(1, pages + 1))
    assert result.failed_pages == ()
    assert result.chars > 0
    assert phrase in result.text
    assert garbled_share(result.text) < WARN_SHARE


def test_encrypted_pdfs_with_an_empty_password_open() -> None:
    aes = extract_document(read("pdf/pypdf_r6-empty-password.pdf"), "aes.pdf")
    assert aes.pages[0].text == "pdf encryption test\npassword: asdfzxcv"
    rc4 = extract_document(read("pdf/pdfminer_dmca.pdf"), "rc4.pdf")
    assert "U.S. Copyright Office" in rc4.text and rc4.page_count == 18


def test_blank_pages_keep_their_numbers() -> None:
    # Page 3 has no text layer: it is a scan of "This page is intentionally left blank".
    result = extract(read("pdf/uns_layout-parser-paper-with-empty-pages.pdf"), "lp.pdf")
    assert [bool(page.text.strip()) for page in result.pages] == [True, False, True, True]
    assert result.pages[2].text == "This page is intentionally left blank"
    assert result.ocr is not None and result.ocr.pages == (3,)
    assert result.text == "\n\n".join(page.text for page in result.pages)
    assert result.chars == sum(len(page.text) for page in result.pages)


def check_outcome(folder: str, name: str, expected: str, phrase: str, timeout_s: float) -> None:
    # The tables are pypdf's reading of each file: say so when another pypdf reads it otherwise.
    made_with = f"(tables made with pypdf {PYPDF_VERSION}, running {pypdf.__version__})"
    try:
        result = extract_document(read(f"{folder}/{name}"), name, timeout_s=timeout_s)
    except ExtractionError as err:
        assert err.code == expected, f"{name}: {err.code}: {err} {made_with}"
        assert_readable_message(err)
    else:
        assert expected == "ok", f"{name} extracted, expected {expected} {made_with}"
        assert phrase in result.text
        assert garbled_share(result.text) < WARN_SHARE
    assert_no_child_left()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROBLEM_PDFS))
def test_problem_pdfs_fail_cleanly_or_recover(name: str) -> None:
    expected, phrase = PROBLEM_PDFS[name]
    check_outcome("pdf_problem", name, expected, phrase, 3 if expected.endswith("timeout") else 60)


@pytest.mark.parametrize("name", sorted(INTL_PDFS))
def test_international_pdfs_extract_or_are_flagged_as_garbled(name: str) -> None:
    expected, phrase = INTL_PDFS[name]
    check_outcome("pdf_intl", name, expected, phrase, 60)
