"""Rich Text Format with striprtf: its text, in the code page the file declares."""

import re

from striprtf.striprtf import rtf_to_text

from rag_pipeline.core.stages.extract.layout import reading
from rag_pipeline.core.stages.extract.model import ExtractionError, RawPages

_CODE_PAGE = re.compile(rb"\\ansicpg(\d+)")
_ESCAPED = re.compile(rb"\\[\\{}]")


def rtf_pages(data: bytes) -> RawPages:
    """The text as one page. An RTF whose groups never close was cut short: it is damaged,
    even though a lenient reader would return the text before the cut."""
    unclosed = _unclosed_groups(data)
    if unclosed:
        raise ExtractionError(
            "damaged_document",
            f"the RTF file is damaged: it ends with {unclosed} group(s) still open (truncated?)",
        )
    match = _CODE_PAGE.search(data[:4096])
    encoding = f"cp{int(match[1])}" if match else "cp1252"
    with reading("RTF file"):
        try:
            "".encode(encoding)
        except LookupError:
            encoding = "cp1252"
        # RTF is 7-bit: bytes above 127 appear only escaped, so Latin-1 decodes it losslessly.
        text: str = rtf_to_text(  # type: ignore[no-untyped-call]
            data.decode("latin-1"), encoding=encoding, errors="replace"
        )
    return RawPages([text], 1)


def _unclosed_groups(data: bytes) -> int:
    plain = _ESCAPED.sub(b"", data)  # \{ and \} are literal braces
    return max(plain.count(b"{") - plain.count(b"}"), 0)
