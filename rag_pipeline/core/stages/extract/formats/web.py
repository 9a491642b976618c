"""HTML pages (trafilatura) and EPUB books (ebooklib, each chapter's XHTML read with lxml).

trafilatura keeps a page's main content and drops navigation, menus, footers and other
boilerplate; it led the ScrapingHub and Bevendorff et al. (SIGIR 2023) extraction benchmarks.
A book's chapters have no boilerplate, so they are read whole, block by block.
"""

import io
import re

import ebooklib
import trafilatura
from ebooklib import epub
from lxml import etree, html

from rag_pipeline.core.stages.extract.layout import BLOCK_SEPARATOR, join_blocks, one_line, reading
from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    TextBudget,
    check_pages,
)
from rag_pipeline.core.stages.extract.model import ExtractionError, RawPages

_BLOCK_TAGS = (
    "p", "div", "section", "article", "aside", "header", "footer", "blockquote", "pre", "li",
    "ul", "ol", "dl", "dt", "dd", "tr", "table", "caption", "figcaption", "figure",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "nav",
)  # fmt: skip
_INVISIBLE = ("script", "style", "template", "noscript", "head")
_LINE_BREAK = "\ue000"  # private use: survives the white-space collapse below
_LINES = re.compile(r"\n[ \t]*(?=\S)")


def html_pages(data: bytes) -> RawPages:
    """The page's title and main content as one page; tables are kept, a row to a line.

    Given bytes, trafilatura decodes them by the page's declared charset, falling back to
    detection, as a browser would.
    """
    with reading("HTML page"):
        if b"\x00" in data[:4096]:
            raise ExtractionError("damaged_document", "the HTML page contains binary data")
        found = trafilatura.bare_extraction(
            data, with_metadata=True, include_tables=True, include_comments=False
        )
        title = one_line(getattr(found, "title", None) or "")
        body = getattr(found, "text", None) or ""
        if not body.strip():
            # Pages trafilatura finds no article in (an index, a form) keep all their text.
            body = trafilatura.html2txt(data)
    # trafilatura ends each element with a single newline: each becomes a block of its own.
    text = _LINES.sub(BLOCK_SEPARATOR, body.strip())
    if title and not text.startswith(title):
        text = title + BLOCK_SEPARATOR + text
    return RawPages([text], 1)


def epub_pages(data: bytes, limits: ExtractionLimits = DEFAULT_LIMITS) -> RawPages:
    """Every document of the book's spine, in reading order: a chapter is a page."""
    budget = TextBudget(limits)
    with reading("EPUB book"):
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
        check_pages(len(book.spine), limits)
        pages = []
        for item_id, _linear in book.spine:
            item = book.get_item_with_id(item_id)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
                continue
            pages.append(budget.spend(xhtml_text(item.get_content())))
    if not pages:
        raise ExtractionError("damaged_document", "the EPUB book is damaged: its spine is empty")
    return RawPages(pages, len(pages))


def xhtml_text(content: bytes) -> str:
    """An (X)HTML document's visible text, a block (paragraph, heading, list item) at a time."""
    if not content.strip():
        return ""
    root = html.fromstring(content)
    for element in list(root.iter(*_INVISIBLE)):
        element.drop_tree()
    for element in root.iter(*_BLOCK_TAGS):
        element.text = "\n\n" + (element.text or "")
        element.tail = "\n\n" + (element.tail or "")
    for element in root.iter("br"):
        element.tail = _LINE_BREAK + (element.tail or "")
    text = etree.tostring(root, method="text", encoding="unicode")
    # A source line break is only white space; a <br> is a line break.
    return join_blocks(
        " ".join(block.split()).replace(_LINE_BREAK, "\n") for block in re.split(r"\n\s*\n", text)
    )
