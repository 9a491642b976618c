"""Turn an uploaded PDF, Markdown or plain-text file into normalised text, page by page.

`extract` works in-process; `extract_document` runs it in a forkserver child with a hard
time limit, because pypdf has no way to interrupt a pathological page (a corpus file with
16.5k tiny text runs takes ~10 s on a single page). Every failure a user can cause is an
`ExtractionError` whose `code` is one of `ERROR_CODES`.
"""

import codecs
import contextlib
import io
import logging
import multiprocessing
import os
import re
import signal
import time
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes
from charset_normalizer.constant import IANA_SUPPORTED
from charset_normalizer.utils import is_multi_byte_encoding
from pypdf import PasswordType, PdfReader
from pypdf.errors import EmptyFileError, PyPdfError

MEDIA_PDF = "application/pdf"
MEDIA_MARKDOWN = "text/markdown"
MEDIA_TEXT = "text/plain"

ERROR_CODES = (
    "empty_file",
    "unsupported_type",
    "password_required",
    "damaged_pdf",
    "no_text_layer",
    "extraction_timeout",
    "garbled_text",
)

# Measured on every readable corpus file: at most 0.06 (sf_GeoTopo: formula glyphs without
# a text mapping); every broken one scores at least 0.70 (pdf_intl/pdfjs_XiaoBiaoSong: GBK
# read as Latin-1; glyph-name, shifted-CID and other mojibake files score 0.98-1.0). 0.3 is
# far from both, so a document with a few bad pages or figures still gets through.
GARBLED_FAIL_SHARE = 0.3

log = logging.getLogger(__name__)


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

    @property
    def text(self) -> str:
        """All pages joined with a blank line ("\\n\\n"); per-page offsets stay in `pages`."""
        return "\n\n".join(page.text for page in self.pages)

    @property
    def chars(self) -> int:
        """Characters of page text, not counting the separators `text` inserts."""
        return sum(len(page.text) for page in self.pages)


_PDF_MAGIC = b"%PDF-"
_BINARY_MAGICS = {
    b"\x89PNG\r\n\x1a\n": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image", b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a ZIP archive (or DOCX/XLSX/ODT)", b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "a legacy Microsoft Office file",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive", b"Rar!\x1a\x07": "a RAR archive",
}  # fmt: skip
_MARKDOWN_SUFFIXES = (".md", ".markdown")


def sniff_media_type(data: bytes, filename: str) -> str:
    """Decide the media type from the bytes; the name only separates Markdown from text.

    A file named .pdf without a PDF header is `unsupported_type`, not `damaged_pdf`: real
    damage (truncation, broken xref) leaves the header in place, so a missing header means
    the upload is something else (an HTML error page, an image, random bytes) and telling
    the user to repair a PDF would send them the wrong way.
    """
    return _sniff(data, filename)[0]


def _sniff(data: bytes, filename: str) -> tuple[str, tuple[str, str] | None]:
    if not data:
        raise ExtractionError("empty_file", "the file is empty (0 bytes)")
    if _looks_like_pdf(data):
        return MEDIA_PDF, None
    for magic, kind in _BINARY_MAGICS.items():
        if data.startswith(magic):
            raise ExtractionError("unsupported_type", f"the file is {kind}, not a PDF or text file")
    name = filename.lower()
    if name.endswith(".pdf"):
        raise ExtractionError(
            "unsupported_type", "the file is named .pdf but is not a PDF (no %PDF- header)"
        )
    decoded = decode_text(data)
    return (MEDIA_MARKDOWN if name.endswith(_MARKDOWN_SUFFIXES) else MEDIA_TEXT), decoded


def _looks_like_pdf(data: bytes) -> bool:
    position = data.find(_PDF_MAGIC, 0, 1024)
    if position == 0:
        return True
    # Readers accept junk before the header, but a text file may also quote "%PDF-1.7",
    # so off-zero headers need the end-of-file markers a PDF writer always emits.
    tail = data[-2048:]
    return position > 0 and (b"%%EOF" in tail or b"startxref" in tail)


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
_TRAILING_SPACE = re.compile(r"[^\S\n]+(?=\n|\Z)")


def normalize_text(text: str) -> str:
    """NFKC, LF line ends, no control characters except tab/newline, no trailing spaces."""
    text = unicodedata.normalize("NFKC", text)
    # Vertical tab, form feed and Unicode line separators end lines too; deleting them
    # would glue the neighbouring words together.
    text = _NEWLINES.sub("\n", text)
    text = _CONTROL_CHARS.sub("", text)
    return _TRAILING_SPACE.sub("", text)


_GLYPH_NAMES = re.compile(
    r"/(?:g|G|cid|glyph|index)\d+(?![A-Za-z])|/uni[0-9A-Fa-f]{4,6}(?![G-Zg-z])|\(cid:\d+\)"
)
# A UTF-8 lead byte followed by a continuation byte, both read as Latin-1 or cp1252.
_UTF8_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_HAN_FAMILY = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "BOPOMOFO"})
# A bad character condemns its whole token only in word-sized tokens: unspaced CJK text
# makes a whole line one token, and one stray character must not condemn the line.
_SPREAD_LIMIT = 32


def garbled_share(text: str) -> float:
    """Share (0..1) of non-whitespace characters that are extraction garbage.

    Garbage is judged per whitespace-separated token, because a broken font spoils whole
    words: glyph names (/g18/g152, /uni4E00, (cid:12)), UTF-8 read as Latin-1 (Ã©, â€™),
    CJK bytes read as Latin-1 (Ä¿ ¹Ø), control/unassigned/U+FFFD characters, tokens
    starting with a combining mark or mixing three scripts (CID codes landing in random
    blocks), and Yi/Vai/Bamum characters (EUC-encoded kana read as UTF-16). Private-use
    characters count individually: icon fonts put single bullets there legitimately.
    """
    total = garbage = 0
    for token in text.split():
        total += len(token)
        garbage += _token_garbage(token)
    return garbage / total if total else 0.0


def _token_garbage(token: str) -> int:
    # One glyph-name-like piece may be a path ("/usr/lib/g1"); broken fonts yield runs.
    if _GLYPH_NAMES.fullmatch(token) or len(_GLYPH_NAMES.findall(token)) > 1:
        return len(token)
    if token.isascii():
        return len(token) if _ASCII_CONTROL.search(token) else 0
    if _UTF8_MOJIBAKE.search(token):
        return len(token)
    if _latin1_read_cjk(token):
        return len(token)
    if unicodedata.category(token[0]) in ("Mn", "Me"):
        return len(token)
    bad = private = 0
    scripts: set[str] = set()
    for ch in token:
        category = unicodedata.category(ch)
        if category == "Co":
            private += 1
        elif category in ("Cc", "Cn", "Cs") or ch == "\ufffd" or _is_stray_block(ch):
            bad += 1
        elif category in ("Lu", "Ll", "Lt", "Lo"):
            scripts.add(_script(ch))
    if len(scripts) >= 3 or (bad and len(token) <= _SPREAD_LIMIT):
        return len(token)
    return bad + private


def _latin1_read_cjk(token: str) -> bool:
    # Two-byte CJK codes read as Latin-1 give runs of high Latin-1 characters, and most of
    # them contain a symbol (Ä¿ ¹Ø £±). Letters-only runs stay innocent so that German
    # "äöüß" passes; a run of one repeated symbol is usually a leader ("···") or "§§".
    return (
        len(set(token)) > 1
        and all("\u0080" <= ch <= "\u00ff" for ch in token)
        and any(not unicodedata.category(ch).startswith("L") for ch in token)
    )


def _is_stray_block(ch: str) -> bool:
    return "\ua000" <= ch <= "\ua4cf" or "\ua500" <= ch <= "\ua63f" or "\ua6a0" <= ch <= "\ua6ff"


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    # NFKC first, so that math italics, fullwidth and letterlike symbols (𝑥, ｂ, ℝ) count
    # as the script they stand for rather than as "MATHEMATICAL" or "FULLWIDTH".
    word = unicodedata.name(unicodedata.normalize("NFKC", ch)[:1] or ch, "?").split(" ", 1)[0]
    return "CJK" if word in _HAN_FAMILY else word


def extract(data: bytes, filename: str) -> ExtractedText:
    """Extract normalised text in-process; raises ExtractionError for unusable documents."""
    media_type, decoded = _sniff(data, filename)
    if decoded is None:
        raw_pages, page_count, failed = _pdf_pages(data)
        encoding = None
    else:
        raw_pages, encoding = [decoded[0]], decoded[1]
        page_count, failed = 1, ()
        if not decoded[0].strip():
            raise ExtractionError("empty_file", "the file contains only whitespace")
    # Judged before normalising: NFKC and control-character removal would erase some of
    # the evidence (a font that maps spaces to U+0001, for example).
    share = garbled_share("\n".join(raw_pages))
    if share > GARBLED_FAIL_SHARE:
        cause = "its fonts have no usable text encoding" if encoding is None else "unknown encoding"
        raise ExtractionError(
            "garbled_text", f"the text is unreadable ({share:.0%} garbage characters): {cause}"
        )
    pages = [Page(number, normalize_text(raw)) for number, raw in enumerate(raw_pages, 1)]
    return ExtractedText(media_type, pages, encoding, page_count, failed)


def _pdf_pages(data: bytes) -> tuple[list[str], int, tuple[int, ...]]:
    reader, page_count = _open_pdf(data)
    texts: list[str] = []
    failed: list[int] = []
    for index in range(page_count):
        try:
            texts.append(_attach_accents(reader.pages[index].extract_text() or ""))
        except Exception as err:  # pypdf raises many unrelated types on broken content
            log.warning("skipping unreadable PDF page %d: %s", index + 1, _reason(err))
            texts.append("")
            failed.append(index + 1)
    if any(text.strip() for text in texts):
        return texts, page_count, tuple(failed)
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
    raise ExtractionError("damaged_pdf", f"the PDF is damaged: {_reason(errors[0])}")


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


def _reason(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    reason = lines[0] if lines else ""
    if not isinstance(err, PyPdfError):  # KeyError('/Root') alone would say just "'/Root'"
        reason = f"{type(err).__name__}: {reason}" if reason else type(err).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."


@lru_cache(maxsize=1)
def _forkserver() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    # Import pypdf and charset-normalizer once in the fork server, not in every child, and
    # the ~90 codecs charset-normalizer tries (30 ms per child otherwise). Ignored if
    # something else started the fork server earlier; children then import them themselves.
    codecs_tried = [f"encodings.{name}" for name in IANA_SUPPORTED]
    context.set_forkserver_preload([__name__, *codecs_tried])
    return context


def extract_document(data: bytes, filename: str, timeout_s: float = 60.0) -> ExtractedText:
    """`extract` in a child process that is killed after `timeout_s` seconds of processor time
    (or twice that in wall time, whichever comes first).

    The child is always reaped before this returns. Overhead over `extract`, measured with
    a warm fork server (2-core VM): ~8 ms median for Markdown, UTF-8 text and small PDFs,
    ~20 ms for non-UTF-8 text (charset-normalizer's caches start cold in every child). The
    first call also starts the fork server (~0.16 s). Like any forkserver/spawn child, each
    one re-runs a script-style __main__ (not `python -m` mains such as Dagster's workers):
    under the `pytest` console script that adds ~50 ms per call.
    """
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main, args=(sender, data, filename), name="extract_document", daemon=True
    )
    message: tuple[Any, ...] | None = None
    try:
        try:
            child.start()
        except OSError as err:  # the child died while the document was piped to it
            raise RuntimeError(f"the text extraction process died on start: {err}") from err
        # Our copy must go, or a dead child would never show up as EOF on the pipe.
        sender.close()
        _wait_for_result(receiver, child.pid, timeout_s)
        try:
            message = receiver.recv()
        except EOFError:
            message = None
    finally:
        exitcode = _reap(child, grace_s=0.0 if message is None else 5.0)
        receiver.close()
        sender.close()
    if message is None:
        reason = _exit_reason(exitcode)
        if _looks_like_pdf(data) and exitcode is not None and exitcode < 0:
            # A signal (segfault, OOM killer) while parsing: the document is to blame.
            raise ExtractionError("damaged_pdf", f"the PDF crashed the text extractor ({reason})")
        raise RuntimeError(f"the text extraction process died without a result ({reason})")
    if message[0] == "ok":
        result: ExtractedText = message[1]
        return result
    if message[0] == "error":
        raise ExtractionError(message[1], message[2])
    raise RuntimeError(f"text extraction failed: {message[1]}")


# The bound is on the child's processor time: on a busy machine a long but healthy document
# (a 234-page book takes pypdf ~10 s) would otherwise time out while a pathological page that
# would have timed out anyway is merely slower. Wall time still ends at twice the bound, so a
# child that blocks without computing cannot hang a run either.
_WALL_FACTOR = 2.0
_POLL_S = 0.2


def _wait_for_result(receiver: Connection, pid: int | None, timeout_s: float) -> None:
    deadline = time.monotonic() + _WALL_FACTOR * timeout_s
    while not receiver.poll(_POLL_S):
        cpu = _cpu_seconds(pid)
        over = cpu > timeout_s if cpu is not None else time.monotonic() > deadline - timeout_s
        if over or time.monotonic() > deadline:
            raise ExtractionError(
                "extraction_timeout", f"text extraction took longer than {timeout_s:g} s"
            )


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system time of a live process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _child_main(sender: Connection, data: bytes, filename: str) -> None:
    # This process is ours alone: pypdf warns once per font and page, with kilobyte-long
    # dict reprs (400 times for the 400-page corpus file), which would flood worker logs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        message: tuple[Any, ...] = ("ok", extract(data, filename))
    except ExtractionError as err:
        message = ("error", err.code, err.message)
    except Exception as err:  # a bug, reported to the parent as such
        message = ("bug", f"{type(err).__name__}: {_reason(err)}")
    sender.send(message)
    sender.close()


def _reap(child: BaseProcess, grace_s: float) -> int | None:
    if child.pid is None:  # start() itself failed
        return None
    child.join(grace_s)
    if child.exitcode is None:
        child.terminate()
        child.join(1.0)
    if child.exitcode is None:
        child.kill()
        child.join()
    exitcode = child.exitcode
    child.close()
    return exitcode


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def accept(data: bytes, filename: str) -> str:
    """Whether a file can become a document at all, before it becomes one: its media type.

    Cheaper than extraction: it sniffs the type and, for text, that the text is not blank.
    """
    media_type = sniff_media_type(data, filename)
    if media_type != MEDIA_PDF and not decode_text(data)[0].strip():
        raise ExtractionError("empty_file", "the file contains only whitespace")
    return media_type
