"""Text files: decoding with a named encoding, and the normalisation every format's text gets."""

import codecs
import contextlib
import re
import unicodedata

from charset_normalizer import from_bytes
from charset_normalizer.utils import is_multi_byte_encoding

from rag_pipeline.core.stages.extract.model import ExtractionError, RawPages

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same 2 bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BINARY_CONTROLS = re.compile(rb"[\x00-\x08\x0e-\x19\x1c-\x1f]")
# Same text, better-known name: charset-normalizer reports the Windows supersets.
_FAMILIAR_NAMES = {
    "cp932": "shift_jis", "shift_jis_2004": "shift_jis", "cp949": "euc_kr", "euc_jis_2004": "euc_jp"
}  # fmt: skip


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file and name its encoding; binary data is `unsupported_type`."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # A BOM is strong evidence; a damaged tail should not reject the whole file.
            return data[len(bom) :].decode(encoding, errors="replace"), encoding
    if nuls := data.count(0):
        utf16 = _bomless_utf16(data)
        if utf16 is not None:
            return data.decode(utf16, errors="replace"), utf16
        # A stray NUL in an otherwise clean text export is dropped by normalize_text; binary
        # formats are full of them (random bytes alone give 0.4%).
        if nuls > 1 + len(data) // 1000:
            raise ExtractionError("unsupported_type", "the file contains binary data (NUL bytes)")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if len(_BINARY_CONTROLS.findall(data)) > len(data) // 100:
        raise ExtractionError("unsupported_type", "the file contains binary data, not text")
    lenient = data.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    non_ascii = len(lenient) - len(lenient.encode("ascii", errors="ignore"))
    if non_ascii - bad >= 10 * bad:
        # Mostly valid UTF-8 with a few broken bytes: any single-byte guess would turn
        # every correct multi-byte character into mojibake.
        return lenient, "utf-8"
    best = from_bytes(data).best()
    if best is None:
        raise ExtractionError("unsupported_type", "the file is not text in any known encoding")
    text, encoding = str(best), best.encoding
    if not is_multi_byte_encoding(encoding):
        # charset-normalizer picks rarities such as cp1257/cp1006/mac_iceland for short
        # Western text (corpus: Latin-1 umlauts, cp1252 Dutch). When Windows-1252 reads the
        # bytes as cleanly, it is by far the likelier origin.
        western = from_bytes(data, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= best.chaos + 0.1:
            has_c1 = any(0x80 <= byte <= 0x9F for byte in data)
            encoding = "cp1252" if has_c1 else "iso-8859-1"
            return data.decode(encoding, errors="replace"), encoding
    familiar = _FAMILIAR_NAMES.get(encoding)
    with contextlib.suppress(UnicodeDecodeError):
        if familiar is not None and data.decode(familiar) == text:
            encoding = familiar
    return text, encoding


def _bomless_utf16(data: bytes) -> str | None:
    sample = data[:4096]
    even, odd = sample[0::2], sample[1::2]
    if not odd:
        return None
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.3 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.3 and odd_nul < 0.05:
        return "utf-16-be"
    return None


_NEWLINES = re.compile("\r\n?|[\x0b\x0c\u2028\u2029]")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """NFKC, LF line ends, no control characters except tab/newline, no trailing spaces."""
    text = unicodedata.normalize("NFKC", text)
    # Vertical tab, form feed and Unicode line separators end lines too; deleting them
    # would glue the neighbouring words together.
    text = _NEWLINES.sub("\n", text)
    text = _CONTROL_CHARS.sub("", text)
    # Line by line, in linear time: the pattern `[^\S\n]+(?=\n|\Z)` it replaces tried every
    # space of a run that no line end follows, to the end of the run (a 40 KB line of spaces
    # then a letter took 17 s). rstrip() strips what `\s` matches, and a line has no "\n".
    return "\n".join(line.rstrip() for line in text.split("\n"))


def text_pages(text: str, encoding: str) -> RawPages:
    """A decoded text or Markdown file as its single page; blank text is `empty_file`."""
    if not text.strip():
        raise ExtractionError("empty_file", "the file contains only whitespace")
    return RawPages([text], 1, (), encoding)
