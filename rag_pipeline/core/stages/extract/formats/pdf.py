"""PDF text with pypdf, page by page, with a reason for every PDF that yields none."""

import io
import logging
import math
import re
from typing import Any

import pypdfium2
from pypdf import PasswordType, PdfReader
from pypdf.errors import EmptyFileError

from rag_pipeline.core.stages.extract.formats.ocr import (
    OcrOptions,
    PageReading,
    check_available,
    is_blank,
    ocr_pages,
    prepare,
    read_page,
)
from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    TextBudget,
    check_pages,
)
from rag_pipeline.core.stages.extract.model import ExtractionError, RawPages, one_line_reason
from rag_pipeline.core.stages.extract.sandbox import extend_bound

log = logging.getLogger(__name__)


# Scanned pages are rendered at 300 dpi, the resolution Tesseract is trained for: on the
# corpus's scans it read at a mean confidence of 93-95 (`bench formats` compares 200 dpi).
# A page too large for the pixel bound at 300 dpi (a 450-byte PDF can declare a page of 5 x 5
# metres) is rendered at the resolution that fits it.
RENDER_DPI = 300


def pdf_pages(
    data: bytes, ocr: OcrOptions | None = None, limits: ExtractionLimits = DEFAULT_LIMITS
) -> RawPages:
    """The text of every page, with OCR (when `ocr` is given) for pages without a text layer;
    a PDF with no text at all is an `ExtractionError` saying why."""
    reader, page_count = _open_pdf(data)
    check_pages(page_count, limits)
    budget = TextBudget(limits)
    texts: list[str] = []
    failed: list[int] = []
    for index in range(page_count):
        try:
            texts.append(budget.spend(_attach_accents(reader.pages[index].extract_text() or "")))
        except (ExtractionError, MemoryError):
            raise
        except Exception as err:  # pypdf raises many unrelated types on broken content
            log.warning("skipping unreadable PDF page %d: %s", index + 1, one_line_reason(err))
            texts.append("")
            failed.append(index + 1)
    read_by_ocr: dict[int, PageReading] = {}
    textless = [number for number, text in enumerate(texts, 1) if not text.strip()]
    if textless and ocr is not None:
        read_by_ocr = _ocr(data, textless, ocr, any(text.strip() for text in texts), limits)
        for number, page in read_by_ocr.items():
            texts[number - 1] = budget.spend(page.text)
        failed = [n for n in failed if not (n in read_by_ocr and read_by_ocr[n].text.strip())]
    if any(text.strip() for text in texts):
        numbers = sorted(read_by_ocr)
        ocr_read = ocr_pages(numbers, [read_by_ocr[n] for n in numbers]) if numbers else None
        return RawPages(texts, page_count, tuple(failed), ocr=ocr_read)
    if failed:
        raise ExtractionError(
            "damaged_pdf",
            f"the PDF is damaged: no text could be read from {_pages(page_count)}",
        )
    if read_by_ocr:
        nothing = f"OCR found no text on {_pages(len(read_by_ocr))} that look scanned"
        raise ExtractionError("no_text_layer", f"no text layer, and {nothing}")
    scanned = sum(_has_image(reader, index) for index in range(page_count))
    if scanned == 1 == page_count:
        found = "the page looks like a scanned image (OCR is off)"
    elif scanned:
        found = f"{scanned} of {_pages(page_count)} look like scanned images (OCR is off)"
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
        except (ExtractionError, MemoryError):
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


def _ocr(
    data: bytes, numbers: list[int], options: OcrOptions, has_text: bool, limits: ExtractionLimits
) -> dict[int, PageReading]:
    """OCR of the given pages that have any ink, rendered with PDFium. Without Tesseract, a
    PDF with text elsewhere keeps that text (the scanned pages stay empty); one without any
    is `ocr_unavailable`."""
    read: dict[int, PageReading] = {}
    try:
        document = pypdfium2.PdfDocument(data)
    except MemoryError:
        raise
    except Exception as err:  # PDFium refuses what pypdf could only partly read
        log.warning("cannot render the PDF for OCR: %s", one_line_reason(err))
        return read
    try:
        checked = False
        for number in numbers:
            extend_bound(options.page_timeout_s)
            try:
                page = document[number - 1]
                width, height = page.get_size()
                scale = render_scale(width, height, limits.max_pixels)
                image = page.render(scale=scale, grayscale=True).to_pil()
            except MemoryError:
                raise
            except Exception as err:
                log.warning("cannot render PDF page %d for OCR: %s", number, one_line_reason(err))
                continue
            if is_blank(image):
                continue
            if not checked:
                try:
                    check_available(options)
                except ExtractionError:
                    if has_text:
                        log.warning("PDF pages without text are not read: Tesseract is missing")
                        return read
                    raise
                checked = True
            read[number] = read_page(prepare(image, upscale=False), options)
    finally:
        document.close()
    return read


def render_scale(width_pt: float, height_pt: float, max_pixels: int) -> float:
    """Pixels per point to render a page at: 300 dpi, or less for a page that would pass
    `max_pixels` at 300 dpi."""
    scale = RENDER_DPI / 72
    pixels = width_pt * scale * height_pt * scale
    return scale if pixels <= max_pixels else scale * math.sqrt(max_pixels / pixels)


def _has_image(reader: PdfReader, index: int) -> bool:
    page: Any = reader.pages[index]
    try:  # pypdf dictionaries resolve indirect objects on indexing
        xobjects = page["/Resources"]["/XObject"]
        return any(xobjects[name]["/Subtype"] == "/Image" for name in xobjects)
    except Exception:  # missing keys included; this only words an error message
        return False


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"
