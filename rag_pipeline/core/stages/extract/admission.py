"""Admission: what a file is, decided before it becomes a document, in bounded time.

It runs where nothing may stall: in the API on every upload, and in the landing sensor on
every file. Two bounds keep it there:

- the work is linear in what it reads, and it reads at most `TEXT_BYTES` of a text file (a
  longer file's head tells its type as well as the whole does);
- a file larger than `IN_PROCESS_BYTES`, PDFs excepted, is sniffed in the extraction sandbox,
  whose child is stopped at the caller's time bound. A pure-Python loop that holds the GIL
  cannot be interrupted from a thread, so only a process bound holds against a fault not
  found yet (in a library's ZIP or charset code, say). A small file is sniffed in-process:
  its linear scans take a few milliseconds (see `IN_PROCESS_BYTES`), less than a child costs.

Extraction itself decodes the whole text again, so a file admitted by its head can still fail
as a document (a binary tail is `unsupported_type`, a blank one `empty_file`).
"""

from rag_pipeline.core.stages.extract.formats.text import text_pages
from rag_pipeline.core.stages.extract.model import ExtractionError
from rag_pipeline.core.stages.extract.sandbox import run_bounded
from rag_pipeline.core.stages.extract.sniff import looks_like_pdf, sniff

DEFAULT_SNIFF_TIMEOUT_S = 5.0
# Sniffing 64 KiB in-process takes at most ~2 ms warm, 17 ms cold (random non-UTF-8 bytes,
# which charset-normalizer reads; 2-core VM), against ~15 ms for a sandbox child.
IN_PROCESS_BYTES = 64 * 1024
# How much of a text file's head is decoded to judge it text: 1 MiB of cp1252 text, the
# slowest kind, takes ~0.1 s.
TEXT_BYTES = 1024 * 1024


def accept(data: bytes, filename: str, timeout_s: float = DEFAULT_SNIFF_TIMEOUT_S) -> str:
    """Whether a file can become a document at all, before it becomes one: its media type.

    Cheaper than extraction: it sniffs the type and, for text, that the text is not blank.
    A file that cannot be sniffed within `timeout_s` seconds (processor time, or twice that
    in wall time) is `sniff_timeout`.
    """
    if len(data) <= IN_PROCESS_BYTES or looks_like_pdf(data):
        # A PDF is told by a few bytes at its start and end, whatever its size.
        return sniffed_type(data, filename)
    try:
        return run_bounded(sniffed_type, data, filename, timeout_s)
    except ExtractionError as err:
        if err.code != "extraction_timeout":
            raise
        raise ExtractionError(
            "sniff_timeout", f"the file's type could not be told within {timeout_s:g} s"
        ) from None


def sniffed_type(data: bytes, filename: str) -> str:
    """`accept`'s verdict without its time bound (module-level: the sandbox child runs it)."""
    media_type, decoded = sniff(data, filename, text_bytes=TEXT_BYTES)
    if decoded is not None and len(data) <= TEXT_BYTES:
        text_pages(*decoded)  # blank text is `empty_file`; a longer file's head says nothing
    return media_type
