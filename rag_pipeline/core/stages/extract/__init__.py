"""Turn an uploaded document into normalised text, page by page.

`extract` sniffs the media type by content (`sniff`) and hands the document to that format's
reader: `pdf` (with `ocr` for pages without a text layer), `ocr` for images, `office` (DOCX,
PPTX, XLSX), `opendocument` (ODT), `web` (HTML, EPUB), `rtf` and `text`; every format's text
then gets the same garbage check (`garbled`) and normalisation. `extract_document` runs
`extract` in the `sandbox`, a child process with a time bound, because a reader can take
unbounded time on a pathological document; small text files, whose decoding is bounded by
their size, are read in-process. `admission` decides, in bounded time, whether a file can be
a document at all (`accept`), before it becomes one. Every failure a user can cause is an
`ExtractionError` whose `code` is one of `ERROR_CODES`.

A new format is a sibling module with a reader from bytes to `RawPages` (failing with
`damaged_document` through `layout.reading`), a media type that `sniff` recognises, and an
entry in `_READERS`.
"""

from collections.abc import Callable
from functools import partial

from rag_pipeline.core.stages.extract.admission import DEFAULT_SNIFF_TIMEOUT_S, accept
from rag_pipeline.core.stages.extract.garbled import GARBLED_FAIL_SHARE, garbled_share
from rag_pipeline.core.stages.extract.model import (
    ERROR_CODES,
    ExtractedText,
    ExtractionError,
    OcrPages,
    Page,
    RawPages,
    one_line_reason,
)
from rag_pipeline.core.stages.extract.ocr import (
    DEFAULT_OCR,
    LOW_CONFIDENCE,
    OcrOptions,
    image_pages,
)
from rag_pipeline.core.stages.extract.office import docx_pages, pptx_pages, xlsx_pages
from rag_pipeline.core.stages.extract.opendocument import odt_pages
from rag_pipeline.core.stages.extract.pdf import pdf_pages
from rag_pipeline.core.stages.extract.rtf import rtf_pages
from rag_pipeline.core.stages.extract.sandbox import run_bounded
from rag_pipeline.core.stages.extract.sniff import (
    IMAGE_TYPES,
    MEDIA_DOCX,
    MEDIA_EPUB,
    MEDIA_HTML,
    MEDIA_MARKDOWN,
    MEDIA_ODT,
    MEDIA_PDF,
    MEDIA_PPTX,
    MEDIA_RTF,
    MEDIA_TEXT,
    MEDIA_XLSX,
    looks_like_pdf,
    sniff,
    sniff_media_type,
)
from rag_pipeline.core.stages.extract.text import decode_text, normalize_text, text_pages
from rag_pipeline.core.stages.extract.web import epub_pages, html_pages

__all__ = [
    "DEFAULT_OCR",
    "DEFAULT_SNIFF_TIMEOUT_S",
    "ERROR_CODES",
    "GARBLED_FAIL_SHARE",
    "LOW_CONFIDENCE",
    "MEDIA_MARKDOWN",
    "MEDIA_PDF",
    "MEDIA_TEXT",
    "ExtractedText",
    "ExtractionError",
    "OcrOptions",
    "OcrPages",
    "Page",
    "accept",
    "decode_text",
    "extract",
    "extract_document",
    "garbled_share",
    "normalize_text",
    "sniff_media_type",
    "start_sandbox",
]

# Binary formats, HTML and RTF are read from their bytes; text is decoded once, while it is
# sniffed.
_READERS: dict[str, Callable[[bytes], RawPages]] = {
    MEDIA_DOCX: docx_pages,
    MEDIA_PPTX: pptx_pages,
    MEDIA_XLSX: xlsx_pages,
    MEDIA_ODT: odt_pages,
    MEDIA_EPUB: epub_pages,
    MEDIA_HTML: html_pages,
    MEDIA_RTF: rtf_pages,
}

# Text up to this size is read in-process: decoding it takes a few milliseconds at most (a
# 256 KiB file that is not UTF-8, the slowest case, ~0.1 s), a tenth of the sandbox's cost
# for a small file. PDFs, and the formats of any other reader in `_READERS`, always go to the
# sandbox, whatever their size.
IN_PROCESS_TEXT_BYTES = 256 * 1024


def extract(data: bytes, filename: str, ocr: OcrOptions | None = DEFAULT_OCR) -> ExtractedText:
    """Extract normalised text in-process; raises ExtractionError for unusable documents.

    `ocr` None turns OCR off: image files are then `ocr_unavailable`, and PDF pages without
    a text layer stay empty.
    """
    media_type, decoded = sniff(data, filename)
    if decoded is not None:
        raw = text_pages(*decoded)
    elif media_type == MEDIA_PDF:
        raw = pdf_pages(data, ocr)
    elif media_type in IMAGE_TYPES:
        if ocr is None:
            raise ExtractionError(
                "ocr_unavailable", "an image needs OCR, which is off (RAG_OCR_LANGUAGES is empty)"
            )
        raw = image_pages(data, ocr)
    else:
        raw = _READERS[media_type](data)
    return _checked(media_type, raw)


def _checked(media_type: str, raw: RawPages) -> ExtractedText:
    # Judged before normalising: NFKC and control-character removal would erase some of
    # the evidence (a font that maps spaces to U+0001, for example).
    share = garbled_share("\n".join(raw.pages))
    if share > GARBLED_FAIL_SHARE:
        cause = (
            "its fonts have no usable text encoding" if raw.encoding is None else "unknown encoding"
        )
        raise ExtractionError(
            "garbled_text", f"the text is unreadable ({share:.0%} garbage characters): {cause}"
        )
    pages = [Page(number, normalize_text(text)) for number, text in enumerate(raw.pages, 1)]
    return ExtractedText(media_type, pages, raw.encoding, raw.page_count, raw.failed_pages, raw.ocr)


def extract_document(
    data: bytes, filename: str, timeout_s: float = 60.0, ocr: OcrOptions | None = DEFAULT_OCR
) -> ExtractedText:
    """`extract` in a child process that is killed after `timeout_s` seconds of processor time
    (or twice that in wall time, whichever comes first).

    The child is always reaped before this returns. Overhead over `extract`, measured with
    a warm fork server (2-core VM): ~8 ms median for Markdown, UTF-8 text and small PDFs,
    ~20 ms for non-UTF-8 text (charset-normalizer's caches start cold in every child). The
    first call also starts the fork server (~0.16 s). Like any forkserver/spawn child, each
    one re-runs a script-style __main__ (not `python -m` mains such as Dagster's workers):
    under the `pytest` console script that adds ~50 ms per call.

    Text files up to `IN_PROCESS_TEXT_BYTES` skip the child: their reading is bounded by their
    size. They give the same result, and the same errors, as in the child.

    Each page of OCR adds `ocr.page_timeout_s` to the bound, in processor and wall time alike.
    """
    if len(data) <= IN_PROCESS_TEXT_BYTES and not looks_like_pdf(data):
        try:
            media_type, decoded = sniff(data, filename)
            if decoded is not None:
                return _checked(media_type, text_pages(*decoded))
        except ExtractionError:
            raise
        except Exception as err:  # a bug, reported as the child would report it
            raise RuntimeError(
                f"text extraction failed: {type(err).__name__}: {one_line_reason(err)}"
            ) from err
    extractor = extract if ocr == DEFAULT_OCR else partial(extract, ocr=ocr)
    return run_bounded(extractor, data, filename, timeout_s)


def start_sandbox() -> None:
    """Start the sandbox's fork server now, so that the first PDF does not wait for it."""
    run_bounded(extract, b"warm up", "warm-up.txt", timeout_s=30)
