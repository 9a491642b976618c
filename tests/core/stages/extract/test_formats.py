"""Office, OpenDocument, EPUB, HTML and RTF: what a user gets from each, and damaged files."""

import io
import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from support.corpus_tables import CORPUS, read
from support.extraction import assert_no_child_left, assert_readable_message

from rag_pipeline.core.stages.extract import ExtractionError, extract, extract_document
from rag_pipeline.core.stages.extract.sniff import (
    MEDIA_DOCX,
    MEDIA_EPUB,
    MEDIA_HTML,
    MEDIA_ODT,
    MEDIA_PPTX,
    MEDIA_RTF,
    MEDIA_XLSX,
)


def phrases(*folders: str) -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in (CORPUS / "PHRASES.tsv").read_text().splitlines()[1:]]
    return sorted({(rel, phrase) for rel, phrase, _ in rows if rel.split("/")[0] in folders})


@pytest.mark.parametrize(("rel", "phrase"), phrases("office", "html"))
def test_every_office_and_web_file_of_the_corpus_gives_its_phrase(rel: str, phrase: str) -> None:
    result = extract_document(read(rel), Path(rel).name)
    assert phrase in result.text
    assert result.ocr is None


def test_slides_and_sheets_are_pages_and_chapters_come_in_reading_order() -> None:
    deck = extract(read("office/uns_sample-presentation.pptx"), "deck.pptx")
    assert deck.media_type == MEDIA_PPTX and deck.page_count == len(deck.pages) == 4
    book = extract(read("office/uns_stanley-cups.xlsx"), "cups.xlsx")
    assert book.media_type == MEDIA_XLSX
    assert [page.text.splitlines()[0] for page in book.pages] == [
        "Sheet: Stanley Cups",
        "Sheet: Stanley Cups Since 67",
    ]
    # The header row's names are repeated in each row, which is one block.
    assert book.pages[0].text.endswith("\n\nTeam: Maple Leafs | Location: TOR | Stanley Cups: 13")
    epub = extract(read("office/uns_winter-sports.epub"), "book.epub")
    assert epub.media_type == MEDIA_EPUB and epub.page_count == 10  # the spine, cover first
    assert epub.pages[1].text.startswith("The Project Gutenberg eBook of Winter Sports")
    assert epub.pages[9].text.startswith("*** END OF THE PROJECT GUTENBERG EBOOK")
    assert extract(read("office/docling_text_document_03.odt"), "a").media_type == MEDIA_ODT
    assert extract(read("office/pandoc_table_error_codes.rtf"), "a").media_type == MEDIA_RTF


def test_a_word_document_keeps_headings_lists_tables_headers_and_footers() -> None:
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Quarterly report, ACME Corp"
    document.sections[0].footer.paragraphs[0].text = "Confidential: page footer"
    document.add_heading("Results by region", level=1)
    document.add_paragraph("Sales grew in every region.")
    document.add_paragraph("first point", style="List Bullet")
    document.add_paragraph("second point", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, cells in zip(
        table.rows, [("Region", "Sales"), ("North", "12"), ("South", "7")], strict=True
    ):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)

    result = extract(buffer.getvalue(), "report.docx")

    assert result.media_type == MEDIA_DOCX and result.page_count == 1
    assert result.text.split("\n\n") == [
        "Quarterly report, ACME Corp",
        "Results by region",
        "Sales grew in every region.",
        "- first point\n- second point",
        "Region | Sales",
        "Region: North | Sales: 12",
        "Region: South | Sales: 7",
        "Confidential: page footer",
    ]


def test_a_slide_gives_its_text_tables_and_notes() -> None:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    slide.shapes.title.text = "Roadmap"
    shape = slide.shapes.add_table(2, 2, 0, 0, 100, 100)
    for row, cells in zip(shape.table.rows, [("Quarter", "Goal"), ("Q3", "Ship OCR")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    slide.notes_slide.notes_text_frame.text = "Mention the Korean customers."
    deck.slides.add_slide(deck.slide_layouts[5]).shapes.title.text = "Thanks"
    buffer = io.BytesIO()
    deck.save(buffer)

    result = extract(buffer.getvalue(), "deck.pptx")

    assert [page.text for page in result.pages] == [
        "Roadmap\n\nQuarter | Goal\n\nQuarter: Q3 | Goal: Ship OCR\n\n"
        "Notes: Mention the Korean customers.",
        "Thanks",
    ]


def test_a_workbook_gives_each_sheet_with_its_name_and_values() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget"
    sheet.append(["Item", "Cost"])
    sheet.append(["Laptops", 1200.0])
    sheet.append(["Total", "=SUM(B2:B2)"])
    book.create_sheet("Empty")
    buffer = io.BytesIO()
    book.save(buffer)

    result = extract(buffer.getvalue(), "budget.xlsx")

    assert [page.text for page in result.pages] == [
        "Sheet: Budget\n\nItem | Cost\n\nItem: Laptops | Cost: 1200\n\nItem: Total",
        "Sheet: Empty",
    ]  # a formula without a cached value (never opened in Excel) has no value to read


def test_html_keeps_the_title_and_main_content_without_navigation() -> None:
    article = " ".join(["The committee approved the new library budget for next year."] * 8)
    page = f"""<!DOCTYPE html><html><head><title>Library budget approved</title></head>
        <body><nav><a href="/">Home</a> <a href="/sports">Sports section link</a></nav>
        <article><h1>Library budget approved</h1><p>{article}</p>
        <p>Opening hours stay the same, the librarian said.</p></article>
        <footer>Copyright 2024 Example News, all rights reserved</footer></body></html>"""

    result = extract(page.encode(), "news")

    assert result.media_type == MEDIA_HTML
    assert result.text.startswith("Library budget approved\n\n")
    assert "Opening hours stay the same" in result.text
    assert "Sports section link" not in result.text
    assert "all rights reserved" not in result.text


def truncated(rel: str) -> bytes:
    data = read(rel)
    return data[: len(data) * 2 // 3]


def corrupted_zip(rel: str, part: str) -> bytes:
    """The container intact, one part's compressed bytes overwritten."""
    data = bytearray(read(rel))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(part)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + min(info.compress_size, 200)] = bytes(min(info.compress_size, 200))
    return bytes(data)


DAMAGED = {
    "docx, truncated": lambda: truncated("office/markitdown_test.docx"),
    "docx, corrupt part": lambda: corrupted_zip("office/markitdown_test.docx", "word/document.xml"),
    "pptx, truncated": lambda: truncated("office/markitdown_test.pptx"),
    "xlsx, truncated": lambda: truncated("office/uns_2023-half-year-analyses-by-segment.xlsx"),
    "xlsx, corrupt part": lambda: corrupted_zip(
        "office/uns_stanley-cups.xlsx", "xl/worksheets/sheet1.xml"
    ),
    "odt, truncated": lambda: truncated("office/docling_text_document_01.odt"),
    "epub, truncated": lambda: truncated("office/uns_winter-sports.epub"),
    "rtf, truncated": lambda: truncated("office/tika_testRTFJapanese.rtf"),
    "html, binary inside": lambda: read("html/readability_mercurial.html")[:300] + bytes(4096),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_file_of_any_format_fails_with_a_reason(case: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_document(DAMAGED[case](), f"damaged.{case.split(',')[0]}")
    assert caught.value.code == "damaged_document", caught.value
    assert_readable_message(caught.value)
    assert_no_child_left()
