"""Turn an uploaded document into normalised text, page by page.

`extract` sniffs the media type by content (`sniff`) and hands the document to that format's
reader: `pdf` (with `ocr` for pages without a text layer), `ocr` for images, `office` (DOCX,
PPTX, XLSX), `opendocument` (ODT), `web` (HTML, EPUB), `rtf` and `text`; every format's text
then gets the same garbage check (`garbled`) and normalisation. `extract_document` runs
`extract` in the `sandbox`, a child process with bounds on its time and memory, because a
reader can take unbounded time or memory on a pathological document; small text files, whose
decoding is bounded by their size, are read in-process. `admission` decides, in bounded time,
whether a file can be a document at all (`accept`), before it becomes one. Every upload is
hostile: `limits` bounds pages, pixels, characters and, through `zipguard`, what a ZIP
container inflates to, before and while the readers work. Every failure a user can cause is an
`ExtractionError` whose `code` is one of `ERROR_CODES`.

A new format is a sibling module with a reader from bytes and `ExtractionLimits` to `RawPages`
(failing with `damaged_document` through `layout.reading`), a media type that `sniff`
recognises, and an entry in `_READERS`.
"""

from collections.abc import Callable
from functools import partial

from rag_pipeline.core.stages.extract.admission import DEFAULT_SNIFF_TIMEOUT_S, accept
from rag_pipeline.core.stages.extract.formats.ocr import (
    DEFAULT_OCR,
    LOW_CONFIDENCE,
    OcrOptions,
    image_pages,
)
from rag_pipeline.core.stages.extract.formats.office import docx_pages, pptx_pages, xlsx_pages
from rag_pipeline.core.stages.extract.formats.opendocument import odt_pages
from rag_pipeline.core.stages.extract.formats.pdf import pdf_pages
from rag_pipeline.core.stages.extract.formats.rtf import rtf_pages
from rag_pipeline.core.stages.extract.formats.text import decode_text, normalize_text, text_pages
from rag_pipeline.core.stages.extract.formats.web import epub_pages, html_pages
from rag_pipeline.core.stages.extract.garbled import GARBLED_FAIL_SHARE, garbled_share
from rag_pipeline.core.stages.extract.layout import reading
from rag_pipeline.core.stages.extract.limits import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    TextBudget,
    check_pages,
)
from rag_pipeline.core.stages.extract.model import (
    ERROR_CODES,
    ExtractedText,
    ExtractionError,
    OcrPages,
    Page,
    RawPages,
    one_line_reason,
)
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
from rag_pipeline.core.stages.extract.zipguard import check_archive

__all__ = [
    "DEFAULT_LIMITS",
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
    "ExtractionLimits",
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
_READERS: dict[str, Callable[[bytes, ExtractionLimits], RawPages]] = {
    MEDIA_DOCX: docx_pages,
    MEDIA_PPTX: pptx_pages,
    MEDIA_XLSX: xlsx_pages,
    MEDIA_ODT: odt_pages,
    MEDIA_EPUB: epub_pages,
    # Their text is bounded by their size (HTML and RTF only drop markup): `_checked` suffices.
    MEDIA_HTML: lambda data, _limits: html_pages(data),
    MEDIA_RTF: lambda data, _limits: rtf_pages(data),
}
# ZIP containers: `zipguard` checks them before their reader opens them.
_ARCHIVES = (MEDIA_DOCX, MEDIA_PPTX, MEDIA_XLSX, MEDIA_ODT, MEDIA_EPUB)

# Text up to this size is read in-process: decoding it takes a few milliseconds at most (a
# 256 KiB file that is not UTF-8, the slowest case, ~0.1 s), a tenth of the sandbox's cost
# for a small file. PDFs, and the formats of any other reader in `_READERS`, always go to the
# sandbox, whatever their size.
IN_PROCESS_TEXT_BYTES = 256 * 1024


def extract(
    data: bytes,
    filename: str,
    ocr: OcrOptions | None = DEFAULT_OCR,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> ExtractedText:
    """Extract normalised text in-process; raises ExtractionError for unusable documents.

    `ocr` None turns OCR off: image files are then `ocr_unavailable`, and PDF pages without
    a text layer stay empty. `limits` bounds what the document may cost, except memory and
    time, which only the sandbox (`extract_document`) can bound.
    """
    media_type, decoded = sniff(data, filename)
    if decoded is not None:
        raw = text_pages(*decoded)
    elif media_type == MEDIA_PDF:
        raw = pdf_pages(data, ocr, limits)
    elif media_type in IMAGE_TYPES:
        if ocr is None:
            raise ExtractionError(
                "ocr_unavailable", "an image needs OCR, which is off (RAG_OCR_LANGUAGES is empty)"
            )
        raw = image_pages(data, ocr, limits)
    else:
        if media_type in _ARCHIVES:
            with reading("archive"):
                check_archive(data, limits)
        raw = _READERS[media_type](data, limits)
    return _checked(media_type, raw, limits)


def _checked(media_type: str, raw: RawPages, limits: ExtractionLimits) -> ExtractedText:
    check_pages(raw.page_count, limits)
    budget = TextBudget(limits)
    for page in raw.pages:
        budget.spend(page)
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
    data: bytes,
    filename: str,
    timeout_s: float = 60.0,
    ocr: OcrOptions | None = DEFAULT_OCR,
    limits: ExtractionLimits = DEFAULT_LIMITS,
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

    Each page of OCR adds `ocr.page_timeout_s` to the bound, in processor and wall time alike,
    up to `limits.budget_s` for the whole document. The child's memory may grow by
    `limits.memory_mb`; past it the document is `resource_limit`.
    """
    if len(data) <= IN_PROCESS_TEXT_BYTES and not looks_like_pdf(data):
        try:
            media_type, decoded = sniff(data, filename)
            if decoded is not None:
                return _checked(media_type, text_pages(*decoded), limits)
        except ExtractionError:
            raise
        except Exception as err:  # a bug, reported as the child would report it
            raise RuntimeError(
                f"text extraction failed: {type(err).__name__}: {one_line_reason(err)}"
            ) from err
    if ocr == DEFAULT_OCR and limits == DEFAULT_LIMITS:
        extractor: Callable[[bytes, str], ExtractedText] = extract
    else:
        extractor = partial(extract, ocr=ocr, limits=limits)
    return run_bounded(extractor, data, filename, timeout_s, limits)


def start_sandbox() -> None:
    """Start the sandbox's fork server now, so that the first PDF does not wait for it."""
    run_bounded(extract, b"warm up", "warm-up.txt", timeout_s=30)
