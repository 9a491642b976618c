"""XXE and billion laughs against every XML-based format.

These are refused today only because of how each parser is set up and which libxml2 and expat
it ships with (pyproject.toml pins them): an upgrade that starts reading external entities or
expanding nested ones fails here. Each file is a good one with a DOCTYPE put into the part the
text comes from, and its text replaced by the entity.
"""

import io
import re
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support import hostile
from support.extraction import assert_no_child_left

from rag_pipeline.core.stages.extract import ExtractionError, ExtractionLimits, extract_document

MARKER = "MARKERTEXT"
# 10^9 times "lol" if expanded: 3 GB.
LAUGHS = "".join(
    [
        '<!ENTITY e0 "lol">',
        *(f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, 10)),
        '<!ENTITY e "&e9;">',
    ]
)


def _docx() -> bytes:
    return hostile.good_docx(MARKER)


def _pptx() -> bytes:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = MARKER
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def _xlsx() -> bytes:
    cells = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>0</v></c></row>'
    return hostile.zip_archive(hostile.xlsx_parts(cells, f"<si><t>{MARKER}</t></si>"))


def _odt() -> bytes:
    return hostile.odt_paragraph(MARKER)


def _epub() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("hostile")
    book.set_title("Hostile")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml")
    chapter.content = f"<html><body><p>{MARKER}</p></body></html>"
    book.add_item(chapter)
    book.spine = [chapter]
    book.add_item(epub.EpubNcx())
    buffer = io.BytesIO()
    epub.write_epub(buffer, book)
    return buffer.getvalue()


FORMATS: dict[str, Callable[[], bytes]] = {
    "docx": _docx,
    "pptx": _pptx,
    "xlsx": _xlsx,
    "odt": _odt,
    "epub": _epub,
}


def _with_doctype(xml: bytes, entities: str) -> bytes:
    text = xml.decode()
    declaration = re.match(r"<\?xml[^>]*\?>\s*", text)
    start = declaration.end() if declaration else 0
    doctype = f"<!DOCTYPE root [{entities}]>"
    return (text[:start] + doctype + text[start:].replace(MARKER, "&e;")).encode()


def hostile_file(kind: str, entities: str) -> bytes:
    """The format's good file with `entities` declared in the part that holds its text."""
    if kind == "html":
        page = (
            f"<html><head><title>T</title></head><body><p>Before {MARKER} after</p></body></html>"
        )
        return _with_doctype(page.encode(), entities)
    source = zipfile.ZipFile(io.BytesIO(FORMATS[kind]()))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        found = False
        for info in source.infolist():
            data = source.read(info)
            if MARKER.encode() in data:
                data, found = _with_doctype(data, entities), True
            archive.writestr(info, data)
    assert found, f"no part of the {kind} file holds the marker"
    return out.getvalue()


def outcome(data: bytes, name: str) -> tuple[str, str]:
    """(code, message) or ("ok", text), read in the sandbox with 512 MB of memory."""
    try:
        result = extract_document(data, name, timeout_s=20, limits=ExtractionLimits(memory_mb=512))
    except ExtractionError as err:
        return err.code, err.message
    return "ok", result.text


KINDS = [*FORMATS, "html"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_marker_is_read_where_the_entity_goes(kind: str) -> None:
    """Without a DOCTYPE, each file's text is read: the attacks below hit a real text part."""
    data = FORMATS[kind]() if kind in FORMATS else f"<html><body><p>{MARKER}</p></body></html>"
    code, text = outcome(data.encode() if isinstance(data, str) else data, f"good.{kind}")
    assert code == "ok" and MARKER in text, (code, text)


@pytest.mark.parametrize("kind", KINDS)
def test_an_external_entity_never_reads_a_local_file(kind: str, tmp_path: Path) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    target = tmp_path / "secret.txt"
    target.write_text(secret)
    data = hostile_file(kind, f'<!ENTITY e SYSTEM "file://{target}">')
    code, text = outcome(data, f"xxe.{kind}")
    assert secret not in text
    assert code in ("ok", "damaged_document"), (code, text)
    assert_no_child_left()


@pytest.mark.parametrize("kind", KINDS)
def test_nested_entities_are_never_expanded(kind: str) -> None:
    code, text = outcome(hostile_file(kind, LAUGHS), f"laughs.{kind}")
    assert "lol" * 100 not in text
    # Neither memory nor time ran out: the parser refused or ignored the entities.
    assert code in ("ok", "damaged_document"), (code, text)
    assert_no_child_left()
