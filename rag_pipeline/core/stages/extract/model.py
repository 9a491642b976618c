"""What extraction produces and how it fails, whatever the format."""

from dataclasses import dataclass

from pypdf.errors import PyPdfError

ERROR_CODES = (
    "empty_file",
    "unsupported_type",
    "password_required",
    "damaged_pdf",
    "damaged_document",
    "no_text_layer",
    "ocr_unavailable",
    "extraction_timeout",
    "sniff_timeout",
    "garbled_text",
    "too_large",  # past a bound on the document's content: pages, pixels, inflated bytes, text
    "resource_limit",  # the extracting process ran out of its memory
)


class ExtractionError(Exception):
    """A document that cannot be processed; `code` is machine-readable, str(err) a one-line
    reason a person understands."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown extraction error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type["ExtractionError"], tuple[str, str]]:
        # The default reduce would call __init__(message) alone, breaking pickling
        # (e.g. when Dagster or multiprocessing ships the error between processes).
        return (ExtractionError, (self.code, self.message))


@dataclass(frozen=True)
class RawPages:
    """A format reader's text, page by page, before the garbage check and normalisation."""

    pages: list[str]  # every page, in order, so numbering is true; a page's text may be ""
    page_count: int  # pages in the source
    failed_pages: tuple[int, ...] = ()  # pages whose text could not be read (kept as "")
    encoding: str | None = None  # detected encoding of a text file, None for binary formats
    ocr: "OcrPages | None" = None  # pages read by OCR, if any


@dataclass(frozen=True)
class OcrPages:
    """Which pages OCR read, and Tesseract's mean word confidence (0-100) on each."""

    pages: tuple[int, ...]
    confidence: tuple[float, ...]
    languages: tuple[str, ...]  # the language set that read each page (e.g. "eng")

    def low(self, below: float) -> tuple[int, ...]:
        """Pages whose confidence is under `below`."""
        return tuple(p for p, c in zip(self.pages, self.confidence, strict=True) if c < below)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based; text and Markdown files are a single page 1
    text: str


@dataclass(frozen=True)
class ExtractedText:
    media_type: str
    pages: list[Page]  # every page, in order, so numbering is true; a page's text may be ""
    encoding: str | None  # detected encoding for text/Markdown, None for PDF
    page_count: int  # pages in the source (1 for text/Markdown)
    failed_pages: tuple[int, ...] = ()  # PDF pages whose text pypdf could not read (kept as "")
    ocr: OcrPages | None = None  # pages read by OCR, if any

    @property
    def text(self) -> str:
        """All pages joined with a blank line ("\\n\\n"); per-page offsets stay in `pages`."""
        return "\n\n".join(page.text for page in self.pages)

    @property
    def chars(self) -> int:
        """Characters of page text, not counting the separators `text` inserts."""
        return sum(len(page.text) for page in self.pages)


def one_line_reason(err: BaseException) -> str:
    """The first line of an exception, named by type unless pypdf's own words explain it."""
    lines = str(err).strip().splitlines()
    reason = lines[0] if lines else ""
    if not isinstance(err, PyPdfError):  # KeyError('/Root') alone would say just "'/Root'"
        reason = f"{type(err).__name__}: {reason}" if reason else type(err).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."
