"""What reading one document may cost: memory, pages, pixels, inflated bytes, characters and
processor time. Every upload is hostile until proven otherwise (a 395-byte ODT can ask for a
gigabyte of spaces), so each bound is a setting, and one that trips is that document's failure:
`too_large` for a bound on its content, `resource_limit` for the extracting process's memory,
`extraction_timeout` for its time.

The callers build `ExtractionLimits` from the settings; messages name the setting to change.
"""

from dataclasses import dataclass

from rag_pipeline.core.stages.extract.model import ExtractionError

MB = 1024 * 1024


@dataclass(frozen=True)
class ExtractionLimits:
    # Address space the extraction child may add to its start-up footprint (~440 MB of address
    # space, ~100 MB resident, the readers it imports): RLIMIT_AS is set to both together.
    memory_mb: int = 2048
    max_pages: int = 2000  # pages, slides, sheets, chapters or image frames
    # Decoded pixels of one image frame or rendered page: 50 MP is a 300-dpi scan of about
    # 60 x 80 cm (a 300-dpi A4 page is 8.7 MP). Larger images are refused, larger PDF pages are
    # rendered at a lower resolution instead.
    max_megapixels: float = 50.0
    max_chars: int = 10_000_000  # extracted characters, all pages together
    max_inflated_mb: int = 512  # a ZIP container's entries, inflated, all together
    max_zip_entries: int = 10_000
    # Inflated to compressed size of one entry: XML compresses 10-50 times, bombs 1000 times.
    max_zip_ratio: int = 200
    # Processor time for the whole document, however many OCR pages extended its bound.
    budget_s: float = 1800.0

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    @property
    def max_inflated_bytes(self) -> int:
        return self.max_inflated_mb * MB


DEFAULT_LIMITS = ExtractionLimits()


def too_large(message: str) -> ExtractionError:
    """`too_large`: the message says what is over which limit, and names the setting."""
    return ExtractionError("too_large", message)


def out_of_memory(limits: ExtractionLimits) -> ExtractionError:
    return ExtractionError(
        "resource_limit",
        f"reading the file needed more than the {limits.memory_mb} MB of memory a document may "
        "use (RAG_EXTRACT_MEMORY_MB)",
    )


def check_pages(count: int, limits: ExtractionLimits) -> None:
    if count > limits.max_pages:
        raise too_large(
            f"the file has {count:,} pages, more than the limit of {limits.max_pages:,} "
            "(RAG_MAX_PAGES)"
        )


def check_pixels(width: int, height: int, limits: ExtractionLimits) -> None:
    if width * height > limits.max_pixels:
        raise too_large(
            f"an image of {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels) "
            f"is above the limit of {limits.max_megapixels:g} megapixels (RAG_MAX_IMAGE_MEGAPIXELS)"
        )


class TextBudget:
    """The characters a document may still yield; readers whose text can outgrow their file
    (cells sharing one string, repeat counts) spend it as they read."""

    def __init__(self, limits: ExtractionLimits) -> None:
        self._limit = limits.max_chars
        self._used = 0

    def spend(self, text: str) -> str:
        self._used += len(text)
        if self._used > self._limit:
            raise too_large(
                f"the text is longer than the limit of {self._limit:,} characters "
                "(RAG_MAX_DOCUMENT_CHARS)"
            )
        return text
