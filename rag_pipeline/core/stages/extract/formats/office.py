"""Office Open XML: Word (python-docx), PowerPoint (python-pptx) and Excel (openpyxl).

A Word document is one page: its page breaks are the renderer's, not the file's. A slide is a
page, numbered as in the deck; a sheet is a page, numbered in workbook order, its text opening
with the sheet's name.
"""

import datetime
import io
import itertools
from collections.abc import Iterator
from typing import Any

import docx
import openpyxl
import pptx
from docx.document import Document as WordDocument
from docx.table import Table as WordTable
from docx.text.paragraph import Paragraph
from pptx.shapes.base import BaseShape
from pptx.shapes.group import GroupShape

from rag_pipeline.core.stages.extract.layout import (
    join_blocks,
    list_item,
    one_line,
    reading,
    table_blocks,
)
from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    TextBudget,
    check_pages,
)
from rag_pipeline.core.stages.extract.model import RawPages


def docx_pages(data: bytes, limits: ExtractionLimits = DEFAULT_LIMITS) -> RawPages:
    """Headers, then body paragraphs, headings, lists and tables in order, then footers."""
    budget = TextBudget(limits)
    with reading("Word document"):
        document = docx.Document(io.BytesIO(data))
        headers, footers = _header_footer_blocks(document)
        blocks = [
            budget.spend(block)
            for block in itertools.chain(headers, _word_blocks(document), footers)
        ]
    return RawPages([join_blocks(blocks)], 1)


def _word_blocks(document: WordDocument) -> Iterator[str]:
    items: list[str] = []
    for element in document.iter_inner_content():
        if isinstance(element, Paragraph) and _list_level(element) is not None:
            items.append(list_item(one_line(element.text), _list_level(element) or 0))
            continue
        if items:  # a list is one block, so the chunker keeps it together
            yield "\n".join(items)
            items = []
        if isinstance(element, WordTable):
            yield from table_blocks(_word_rows(element))
        else:
            yield element.text
    if items:
        yield "\n".join(items)


def _list_level(paragraph: Paragraph) -> int | None:
    properties = paragraph._p.pPr
    numbering: Any = properties.numPr if properties is not None else None
    if numbering is not None and numbering.numId is not None:
        level = numbering.ilvl
        return int(level.val) if level is not None else 0
    style = paragraph.style.name if paragraph.style is not None else ""
    return 0 if style.startswith("List") else None


def _word_rows(table: WordTable) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            nested = [one_line(" ".join(_plain_rows(inner))) for inner in cell.tables]
            cells.append(" ".join([cell.text, *nested]))
        rows.append(cells)
    return rows


def _plain_rows(table: WordTable) -> list[str]:
    return [" | ".join(cell.text for cell in row.cells) for row in table.rows]


def _header_footer_blocks(document: WordDocument) -> tuple[list[str], list[str]]:
    headers: list[str] = []
    footers: list[str] = []
    for section in document.sections:
        for kind, into in (("header", headers), ("footer", footers)):
            for variant in ("", "first_page_", "even_page_"):
                part = getattr(section, f"{variant}{kind}")
                if part.is_linked_to_previous:
                    continue
                text = "\n".join(p.text for p in part.paragraphs if p.text.strip())
                for table in part.tables:
                    text += "\n" + "\n".join(table_blocks(_word_rows(table)))
                if text.strip() and text not in into:
                    into.append(text)
    return headers, footers


def pptx_pages(data: bytes, limits: ExtractionLimits = DEFAULT_LIMITS) -> RawPages:
    """Each slide's title, text, tables and speaker notes; the page is the slide number."""
    budget = TextBudget(limits)
    with reading("PowerPoint presentation"):
        deck = pptx.Presentation(io.BytesIO(data))
        check_pages(len(deck.slides), limits)
        pages = []
        for slide in deck.slides:
            blocks = [
                budget.spend(block) for shape in slide.shapes for block in _shape_blocks(shape)
            ]
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = budget.spend(slide.notes_slide.notes_text_frame.text)
                if notes.strip():
                    blocks.append(f"Notes: {notes}")
            pages.append(join_blocks(blocks))
    return RawPages(pages, len(pages))


def _shape_blocks(shape: BaseShape) -> Iterator[str]:
    if isinstance(shape, GroupShape):
        for inner in shape.shapes:
            yield from _shape_blocks(inner)
        return
    # Shape types that carry text say so; graphic frames hold tables (and charts, skipped).
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:  # type: ignore[attr-defined]
        paragraphs = shape.text_frame.paragraphs  # type: ignore[attr-defined]
        lines = [
            list_item(p.text, p.level) if p.level else p.text for p in paragraphs if p.text.strip()
        ]
        yield "\n".join(lines)
    elif getattr(shape, "has_table", False) and shape.has_table:  # type: ignore[attr-defined]
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]  # type: ignore[attr-defined]
        yield from table_blocks(rows)


def xlsx_pages(data: bytes, limits: ExtractionLimits = DEFAULT_LIMITS) -> RawPages:
    """Each sheet's name, then its rows with the header row's names repeated; the page is
    the sheet's place in the workbook. Cached values are read, not formulas.

    Cells are counted against the text budget as they are read: cells share their strings, so
    a 3 KB workbook can put one 1 MB string in a thousand cells, and the text would be 1 GB.
    """
    budget = TextBudget(limits)
    with reading("Excel workbook"):
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            check_pages(len(book.worksheets), limits)
            pages = []
            for sheet in book.worksheets:
                # Read-only mode pads every row to the sheet's declared dimension, which a
                # 2 KB file can set to 16,384 columns by a million rows: the cells tell.
                sheet.reset_dimensions()
                rows = [
                    [budget.spend(_cell_text(value)) for value in row]
                    for row in sheet.iter_rows(values_only=True)
                    if any(value is not None and str(value).strip() for value in row)
                ]
                blocks = table_blocks(rows, spans_repeat=False)
                pages.append(join_blocks([f"Sheet: {sheet.title}", *blocks]))
        finally:
            book.close()
    return RawPages(pages, len(pages))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
