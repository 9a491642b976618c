"""PDF text with pypdf, page by page, with a reason for every PDF that yields none."""

import io
import logging
import re
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import EmptyFileError

from rag_pipeline.core.extract.model import ExtractionError, RawPages, one_line_reason

log = logging.getLogger(__name__)


def pdf_pages(data: bytes) -> RawPages:
    """The text of every page; a PDF with none at all is an `ExtractionError` saying why."""
    reader, page_count = _open_pdf(data)
    texts: list[str] = []
    failed: list[int] = []
    for index in range(page_count):
        try:
            texts.append(_attach_accents(reader.pages[index].extract_text() or ""))
        except Exception as err:  # pypdf raises many unrelated types on broken content
            log.warning("skipping unreadable PDF page %d: %s", index + 1, one_line_reason(err))
            texts.append("")
            failed.append(index + 1)
    if any(text.strip() for text in texts):
        return RawPages(texts, page_count, tuple(failed))
    if failed:
        raise ExtractionError(
            "damaged_pdf",
            f"the PDF is damaged: no text could be read from {_pages(page_count)}",
        )
    scanned = sum(_has_image(reader, index) for index in range(page_count))
    if scanned == 1 == page_count:
        found = "the page looks like a scanned image (OCR is not supported)"
    elif scanned:
        found = f"{scanned} of {_pages(page_count)} look like scanned images (OCR is not supported)"
    else:
        found = f"{_pages(page_count)}, all blank"
    raise ExtractionError("no_text_layer", f"no text layer: {found}")


# TeX's \\accent puts a spacing accent glyph before its letter: "Amp`ere", "O˘guz",
# "Fran¸cois". NFKC would turn "˘" into space + combining breve and split the word; moving
# the accent behind its letter as a combining mark lets NFKC compose "Ampère", "Oğuz".
_ACCENTS = {
    "`": "\u0300", "¨": "\u0308", "´": "\u0301", "ˆ": "\u0302", "˜": "\u0303", "˘": "\u0306",
    "ˇ": "\u030c", "˙": "\u0307", "˚": "\u030a", "˝": "\u030b", "¯": "\u0304", "¸": "\u0327",
    "˛": "\u0328",
}  # fmt: skip
# After a letter any accent qualifies; elsewhere not the backtick (Markdown-style code in
# PDFs) and not after URL punctuation, where pdfTeX draws "~" as "˜".
_SPACING_ACCENT = re.compile(
    r"(?:(?<=[^\W\d_])([`¨´ˆ˜˘ˇ˙˚˝¯¸˛])|(?<![/\\:.~\w`])([¨´ˆ˜˘ˇ˙˚˝¯¸˛]))([^\W\d_])"
)


def _attach_accents(text: str) -> str:
    return _SPACING_ACCENT.sub(lambda m: m[3] + _ACCENTS[m[1] or m[2]], text)


def _open_pdf(data: bytes) -> tuple[PdfReader, int]:
    errors: list[Exception] = []
    # Without a startxref pointer pypdf gives up; one pointing at offset 0 makes its
    # non-strict reader rebuild the xref table by scanning the objects (pdf_problem/
    # pdfjs_issue19800.pdf has no xref at all and reads fine this way).
    for attempt in (data, data + b"\nstartxref\n0\n%%EOF\n"):
        try:
            return _read_pdf(attempt)
        except ExtractionError:
            raise
        except EmptyFileError:
            raise ExtractionError("empty_file", "the file is empty") from None
        except Exception as err:  # every parser failure means the same to a user
            errors.append(err)
    # The retry's error would only confuse: report what was wrong with the file as sent.
    raise ExtractionError("damaged_pdf", f"the PDF is damaged: {one_line_reason(errors[0])}")


def _read_pdf(data: bytes) -> tuple[PdfReader, int]:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise ExtractionError(
            "password_required", "the PDF is password-protected; upload an unprotected copy"
        )
    page_count = len(reader.pages)
    if page_count == 0:
        raise ExtractionError("damaged_pdf", "the PDF is damaged: it has no pages")
    return reader, page_count


def _has_image(reader: PdfReader, index: int) -> bool:
    page: Any = reader.pages[index]
    try:  # pypdf dictionaries resolve indirect objects on indexing
        xobjects = page["/Resources"]["/XObject"]
        return any(xobjects[name]["/Subtype"] == "/Image" for name in xobjects)
    except Exception:  # missing keys included; this only words an error message
        return False


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"
