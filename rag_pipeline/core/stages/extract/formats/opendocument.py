"""OpenDocument text (.odt): headings, paragraphs, lists and tables from `content.xml`.

Read with lxml rather than odfpy: odfpy (last release 2020) loads the whole document model
to offer what one walk over `content.xml` gives: the text and its block structure.
"""

import io
import zipfile
from collections.abc import Iterator

from lxml import etree

from rag_pipeline.core.stages.extract.layout import join_blocks, list_item, reading, table_blocks
from rag_pipeline.core.stages.extract.limits import DEFAULT_LIMITS, ExtractionLimits, TextBudget
from rag_pipeline.core.stages.extract.model import RawPages

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


_PARAGRAPHS = {_tag(_TEXT, "p"), _tag(_TEXT, "h")}
_SKIPPED = {_tag(_TEXT, "tracked-changes"), _tag(_TEXT, "sequence-decls")}
# Repeated empty columns pad a table row out to the sheet's width; a few are real cells. A run
# of spaces (`text:s text:c`) longer than this only lays text out: a file asking for a billion
# (1 GB of text from 395 bytes) gets this many.
_MAX_REPEAT = 64


def odt_pages(data: bytes, limits: ExtractionLimits = DEFAULT_LIMITS) -> RawPages:
    """The body text, as one page (page breaks belong to the renderer)."""
    budget = TextBudget(limits)
    with reading("OpenDocument file"), zipfile.ZipFile(io.BytesIO(data)) as archive:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        root = etree.fromstring(archive.read("content.xml"), parser)
        body = root.find(f"{_tag(_OFFICE, 'body')}/{_tag(_OFFICE, 'text')}")
        blocks = [budget.spend(block) for block in _blocks(body, 0)] if body is not None else []
    return RawPages([join_blocks(blocks)], 1)


def _blocks(element: etree._Element, level: int) -> Iterator[str]:
    for child in element:
        if child.tag in _PARAGRAPHS:
            yield _inline(child)
        elif child.tag == _tag(_TEXT, "list"):
            yield "\n".join(_list_items(child, level))
        elif child.tag == _tag(_TABLE, "table"):
            yield from table_blocks(_rows(child))
        elif child.tag not in _SKIPPED:
            yield from _blocks(child, level)  # sections, frames, indexes


def _list_items(element: etree._Element, level: int) -> Iterator[str]:
    for item in element:
        for child in item:
            if child.tag == _tag(_TEXT, "list"):
                yield from _list_items(child, level + 1)
            elif child.tag in _PARAGRAPHS:
                yield list_item(_inline(child), level)


def _rows(table: etree._Element) -> list[list[str]]:
    rows = []
    for row in table.iter(_tag(_TABLE, "table-row")):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (_tag(_TABLE, "table-cell"), _tag(_TABLE, "covered-table-cell")):
                continue
            text = " ".join(_inline(p) for p in cell.iter(*_PARAGRAPHS))
            cells.extend([text] * _repeat(cell, _tag(_TABLE, "number-columns-repeated")))
        rows.append(cells)
    return rows


def _inline(element: etree._Element) -> str:
    """A paragraph's text: spaces (`text:s`), tabs and line breaks as the writer meant them."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == _tag(_TEXT, "s"):
            parts.append(" " * _repeat(child, _tag(_TEXT, "c")))
        elif child.tag == _tag(_TEXT, "tab"):
            parts.append("\t")
        elif child.tag == _tag(_TEXT, "line-break"):
            parts.append("\n")
        elif child.tag == _tag(_TEXT, "note"):
            citation = child.find(_tag(_TEXT, "note-citation"))
            body = child.find(_tag(_TEXT, "note-body"))
            mark = citation.text if citation is not None and citation.text else ""
            note = " ".join(_inline(p) for p in body.iter(*_PARAGRAPHS)) if body is not None else ""
            parts.append(f"{mark} ({note})" if note else mark)
        elif not isinstance(child.tag, str):  # comments, processing instructions
            pass
        else:
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _repeat(element: etree._Element, attribute: str) -> int:
    """A repeat count as the file gives it, between 1 and `_MAX_REPEAT`."""
    return max(1, min(int(element.get(attribute, "1")), _MAX_REPEAT))
