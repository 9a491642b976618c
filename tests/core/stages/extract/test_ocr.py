"""OCR: scans, images and scanned pages inside digital PDFs, in Latin and CJK scripts.

These tests need Tesseract with its language data (`.ci/run` installs it). Without it they
fail, never skip: OCR is a promise the service makes, not an optional extra.
"""

import io

import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont
from support.corpus_tables import read
from support.extraction import assert_no_child_left, assert_readable_message

from rag_pipeline.core.stages.extract import (
    LOW_CONFIDENCE,
    ExtractionError,
    OcrOptions,
    extract,
    extract_document,
)
from rag_pipeline.core.stages.extract.sniff import MEDIA_PDF, MEDIA_PNG, MEDIA_TIFF


def test_tesseract_and_the_default_languages_are_installed() -> None:
    installed = set(pytesseract.get_languages(config=""))
    assert {"eng", "jpn", "jpn_vert", "kor", "chi_sim", "chi_tra"} <= installed


def test_a_scanned_pdf_is_read_and_marked_as_ocr() -> None:
    result = extract_document(read("scanned/ocrmypdf_linn.pdf"), "linn.pdf")
    assert result.media_type == MEDIA_PDF
    assert "The LinnSequencer is a state-of-the-art composition" in result.text
    assert result.ocr is not None and result.ocr.pages == (1,)
    assert result.ocr.confidence[0] > 90 and result.ocr.languages == ("eng",)
    assert result.ocr.low(LOW_CONFIDENCE) == ()


@pytest.mark.slow
def test_every_frame_of_a_multi_page_tiff_is_a_page() -> None:
    result = extract_document(read("scanned/docling_2206.01062.tif"), "paper.tif")
    assert result.media_type == MEDIA_TIFF and result.page_count == 2
    assert result.ocr is not None and result.ocr.pages == (1, 2)
    assert "DocLayNet: A Large Human-Annotated Dataset for" in result.pages[0].text
    assert result.pages[1].text


@pytest.mark.parametrize(
    ("rel", "phrase", "languages"),
    [
        ("scanned/uns_chi_sim_image.jpeg", "新鲜甘草黄酮养分", "eng+jpn+kor+chi_sim+chi_tra"),
        ("scanned/uns_english-and-korean.png", "안녕하세요, 저희는", "eng+jpn+kor+chi_sim+chi_tra"),
        ("scanned/uns_jpn-vert.jpeg", "元来日本語は漢文に", "jpn_vert"),
    ],
)
def test_cjk_pages_are_read_by_the_language_set_that_reads_them_best(
    rel: str, phrase: str, languages: str
) -> None:
    result = extract(read(rel), rel)
    assert phrase in result.text  # and without Tesseract's spaces between CJK characters
    assert result.ocr is not None and result.ocr.languages == (languages,)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_rendered_png_is_read_with_the_confidence_of_clean_print() -> None:
    page = Image.new("L", (1200, 300), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=48)
    draw.text((40, 60), "The quick brown fox jumps", fill="black", font=font)
    draw.text((40, 160), "over the lazy dog near Norwich", fill="black", font=font)
    result = extract(png(page), "rendered.png")
    assert result.media_type == MEDIA_PNG and result.page_count == 1
    assert " ".join(result.text.split()) == (
        "The quick brown fox jumps over the lazy dog near Norwich"
    )
    assert result.ocr is not None and result.ocr.pages == (1,)
    assert result.ocr.confidence[0] >= 80 and result.ocr.low(LOW_CONFIDENCE) == ()


def test_a_blank_png_reads_as_empty_without_spending_ocr_on_it() -> None:
    # No ink at all (as a blank PDF page): Tesseract is not run, so no page has a confidence.
    result = extract(png(Image.new("L", (400, 300), "white")), "blank.png")
    assert result.media_type == MEDIA_PNG and result.page_count == 1
    assert result.text == ""
    assert result.ocr is None


def test_a_page_read_poorly_reports_its_low_confidence() -> None:
    # Vertical Japanese read as English only: text comes back, at a confidence of 21-46.
    result = extract(read("scanned/uns_jpn-vert.jpeg"), "jpn.jpeg", OcrOptions(("eng",)))
    assert result.text.strip()
    assert result.ocr is not None and result.ocr.languages == ("eng",)
    assert result.ocr.confidence[0] < LOW_CONFIDENCE
    assert result.ocr.low(LOW_CONFIDENCE) == (1,)


@pytest.mark.slow
def test_ocr_time_is_bounded_per_page_not_by_the_extraction_bound() -> None:
    # A 1 s extraction bound: the page's own OCR bound, granted on top of it, is what counts.
    data = read("scanned/ocrmypdf_linn.pdf")
    result = extract_document(data, "linn.pdf", timeout_s=1, ocr=OcrOptions(page_timeout_s=60))
    assert "LinnSequencer" in result.text
    with pytest.raises(ExtractionError) as caught:
        extract_document(data, "linn.pdf", ocr=OcrOptions(page_timeout_s=1))
    assert caught.value.code == "extraction_timeout"
    assert str(caught.value) == "OCR of a page took longer than 1 s"
    assert_no_child_left()


def test_without_tesseract_a_scan_fails_saying_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    for rel in ("scanned/tesstest_phototest.tif", "pdf_problem/pgpt_file_scanned.pdf"):
        with pytest.raises(ExtractionError) as caught:
            extract(read(rel), rel)
        assert caught.value.code == "ocr_unavailable"
        assert "apt-get install tesseract-ocr" in str(caught.value)
        assert len(str(caught.value)) <= 200 and "\n" not in str(caught.value)
    # A digital PDF with one scanned page keeps the text of the others.
    result = extract(read("pdf/uns_layout-parser-paper-with-empty-pages.pdf"), "lp.pdf")
    assert result.ocr is None and not result.pages[2].text and result.pages[0].text


def test_a_missing_language_or_ocr_turned_off_is_ocr_unavailable() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(read("scanned/tesstest_phototest.tif"), "a.tif", OcrOptions(("eng+tha",)))
    assert caught.value.code == "ocr_unavailable"
    assert "apt-get install tesseract-ocr-tha" in str(caught.value)
    assert_readable_message(caught.value)
    with pytest.raises(ExtractionError) as caught:
        extract(read("scanned/tesstest_phototest.tif"), "a.tif", None)
    assert caught.value.code == "ocr_unavailable"


@pytest.mark.parametrize(
    "rel", ["scanned/ocrmypdf_typewriter.png", "scanned/uns_double-column-A.jpg"]
)
def test_a_truncated_image_is_damaged(rel: str) -> None:
    data = read(rel)
    with pytest.raises(ExtractionError) as caught:
        extract_document(data[: len(data) // 2], rel)
    assert caught.value.code == "damaged_document"
    assert_readable_message(caught.value)
