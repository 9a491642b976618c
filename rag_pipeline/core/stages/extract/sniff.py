"""Media-type sniffing: by content, with the name only telling Markdown from plain text.

Binary formats go by their magic bytes; a ZIP container by what it holds (the `mimetype` entry
of EPUB and OpenDocument, the main part named in an Office file's `[Content_Types].xml`), never
by its extension; HTML and RTF by how their text begins.
"""

import io
import struct
import zipfile

from rag_pipeline.core.stages.extract.formats.text import decode_text
from rag_pipeline.core.stages.extract.model import ExtractionError
from rag_pipeline.core.stages.extract.zipguard import check_directory

MEDIA_PDF = "application/pdf"
MEDIA_MARKDOWN = "text/markdown"
MEDIA_TEXT = "text/plain"
MEDIA_HTML = "text/html"
MEDIA_RTF = "application/rtf"
MEDIA_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MEDIA_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MEDIA_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_ODT = "application/vnd.oasis.opendocument.text"
MEDIA_EPUB = "application/epub+zip"
MEDIA_PNG = "image/png"
MEDIA_JPEG = "image/jpeg"
MEDIA_TIFF = "image/tiff"

IMAGE_TYPES = (MEDIA_PNG, MEDIA_JPEG, MEDIA_TIFF)

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_IMAGE_MAGICS = {
    b"\x89PNG\r\n\x1a\n": MEDIA_PNG, b"\xff\xd8\xff": MEDIA_JPEG, b"II*\x00": MEDIA_TIFF,
    b"MM\x00*": MEDIA_TIFF,
}  # fmt: skip
_BINARY_MAGICS = {
    b"GIF8": "a GIF image", b"\x1f\x8b": "a gzip archive", b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "a legacy Microsoft Office file (.doc/.xls/.ppt)",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive", b"Rar!\x1a\x07": "a RAR archive",
}  # fmt: skip
_MARKDOWN_SUFFIXES = (".md", ".markdown")

# An Office file's main part, by the content type `[Content_Types].xml` gives it (macro-enabled
# and template variants read the same way).
_OOXML_MAIN = (
    ("wordprocessingml.document.main", MEDIA_DOCX),
    ("wordprocessingml.template.main", MEDIA_DOCX),
    ("ms-word.document.macroenabled.main", MEDIA_DOCX),
    ("presentationml.presentation.main", MEDIA_PPTX),
    ("presentationml.slideshow.main", MEDIA_PPTX),
    ("ms-powerpoint.presentation.macroenabled.main", MEDIA_PPTX),
    ("spreadsheetml.sheet.main", MEDIA_XLSX),
    ("spreadsheetml.template.main", MEDIA_XLSX),
    ("ms-excel.sheet.macroenabled.main", MEDIA_XLSX),
)
# Without a readable manifest (a truncated file), the part names still tell.
_OOXML_PARTS = {
    "word/document.xml": MEDIA_DOCX, "ppt/presentation.xml": MEDIA_PPTX,
    "xl/workbook.xml": MEDIA_XLSX,
}  # fmt: skip
_MANIFEST_BYTES = 256 * 1024  # real [Content_Types].xml files take a few kilobytes
_ZIP_MIMETYPES = {MEDIA_ODT: MEDIA_ODT, MEDIA_EPUB: MEDIA_EPUB}
_OTHER_OPENDOCUMENT = {
    "application/vnd.oasis.opendocument.spreadsheet": "an OpenDocument spreadsheet (.ods)",
    "application/vnd.oasis.opendocument.presentation": "an OpenDocument presentation (.odp)",
}
# HTML is told by how its text begins, within this many bytes: white space, an optional XML
# declaration and comments, then `<!doctype html` or `<html`.
_HTML_HEAD_BYTES = 4096
_SUPPORTED = "PDF, image, Office, OpenDocument, EPUB, HTML, RTF or text file"


def sniff_media_type(data: bytes, filename: str) -> str:
    """Decide the media type from the bytes; the name only separates Markdown from text.

    A file named .pdf without a PDF header is `unsupported_type`, not `damaged_pdf`: real
    damage (truncation, broken xref) leaves the header in place, so a missing header means
    the upload is something else (an HTML error page, random bytes) and telling the user to
    repair a PDF would send them the wrong way. Images are the exception: a PNG is read as a
    PNG whatever its name.
    """
    return sniff(data, filename)[0]


def sniff(
    data: bytes, filename: str, text_bytes: int | None = None
) -> tuple[str, tuple[str, str] | None]:
    """`sniff_media_type`, plus the decoded text and encoding of a text file (None for binary
    formats, and for HTML and RTF, whose readers decode them themselves), so that deciding
    the type and reading the text decode it only once.

    With `text_bytes`, a text file is judged by at most that many bytes of its head, and the
    text returned is that head's.
    """
    if not data:
        raise ExtractionError("empty_file", "the file is empty (0 bytes)")
    if looks_like_pdf(data):
        return MEDIA_PDF, None
    for magic, media_type in _IMAGE_MAGICS.items():
        if data.startswith(magic):
            return media_type, None
    if data.startswith(_ZIP_MAGIC):
        return _zip_media_type(data), None
    for magic, kind in _BINARY_MAGICS.items():
        if data.startswith(magic):
            raise ExtractionError("unsupported_type", f"the file is {kind}, not a {_SUPPORTED}")
    name = filename.lower()
    if name.endswith(".pdf"):
        raise ExtractionError(
            "unsupported_type", "the file is named .pdf but is not a PDF (no %PDF- header)"
        )
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
        return MEDIA_RTF, None
    if looks_like_html(data[:_HTML_HEAD_BYTES].decode("latin-1")):
        return MEDIA_HTML, None
    decoded = decode_text(data if text_bytes is None else _head_of(data, text_bytes))
    return (MEDIA_MARKDOWN if name.endswith(_MARKDOWN_SUFFIXES) else MEDIA_TEXT), decoded


def _head_of(data: bytes, size: int) -> bytes:
    """At most `size` bytes from the start, not cutting a UTF-8 character in two (which
    would make a UTF-8 file look like another encoding)."""
    if len(data) <= size:
        return data
    cut = size
    while cut > size - 3 and 0x80 <= data[cut] <= 0xBF:  # a continuation byte
        cut -= 1
    return data[:cut]


def looks_like_pdf(data: bytes) -> bool:
    position = data.find(_PDF_MAGIC, 0, 1024)
    if position == 0:
        return True
    # Readers accept junk before the header, but a text file may also quote "%PDF-1.7",
    # so off-zero headers need the end-of-file markers a PDF writer always emits.
    tail = data[-2048:]
    return position > 0 and (b"%%EOF" in tail or b"startxref" in tail)


def looks_like_html(head: str) -> bool:
    """Whether text starts as an HTML page: white space, an optional `<?xml ...>` declaration
    and any comments, then `<!doctype html` or `<html`. Case-insensitive.

    A scan with str.find that looks at each character a bounded number of times. The regular
    expression it replaces, `(?:<!--.*?-->\\s*)*`, could end a comment at any later `-->`
    and backtracked exponentially: `<!---->` 24 times and then `x` took 1.6 s, and every 7
    more bytes doubled that, in the API process.
    """
    text = head.lower()
    position = _skip_space(text, 0)
    if text.startswith("<?xml", position):
        end = text.find(">", position)
        if end < 0:
            return False
        position = _skip_space(text, end + 1)
    while text.startswith("<!--", position):
        end = text.find("-->", position + 4)
        if end < 0:
            return False
        position = _skip_space(text, end + 3)
    if text.startswith("<html", position):
        after = text[position + 5 : position + 6]
        return after == ">" or after.isspace()
    if text.startswith("<!doctype", position):
        name = _skip_space(text, position + 9)
        return name > position + 9 and text.startswith("html", name)
    return False


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


# The classic ZIP format's own maximum, beyond which an archive needs zip64: no document comes
# near it, and zipfile parses a directory this long in a fraction of a second. Sniffing runs in
# the API process, so a larger directory is refused before it is parsed (RAG_MAX_ZIP_ENTRIES,
# the document's own bound, is checked in the extraction child).
SNIFF_MAX_ZIP_ENTRIES = 0xFFFF


def _zip_media_type(data: bytes) -> str:
    check_directory(data, SNIFF_MAX_ZIP_ENTRIES, "(no Office, OpenDocument or EPUB file has more)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            mimetype = _head(archive, "mimetype", 100) if "mimetype" in names else b""
            types = b""
            if "[Content_Types].xml" in names:
                types = _head(archive, "[Content_Types].xml", _MANIFEST_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError, EOFError, ValueError):
        # The central directory is at the end: a truncated file has lost it, but its local
        # headers, from the start, still name the parts (and EPUB and OpenDocument store
        # `mimetype` first and uncompressed, precisely so that it can be read this way).
        names, mimetype = _local_entries(data)
        types = b""
    media_type = _ZIP_MIMETYPES.get(mimetype.decode("ascii", "replace").strip())
    if media_type:
        return media_type
    if other := _OTHER_OPENDOCUMENT.get(mimetype.decode("ascii", "replace").strip()):
        raise ExtractionError("unsupported_type", f"the file is {other}, not a {_SUPPORTED}")
    lowered = types.decode("utf-8", "replace").lower()
    for content_type, media_type in _OOXML_MAIN:
        if content_type in lowered:
            return media_type
    for part, media_type in _OOXML_PARTS.items():
        if part in names:
            return media_type
    raise ExtractionError(
        "unsupported_type", f"the file is a ZIP archive, not a {_SUPPORTED} that we can read"
    )


def _head(archive: zipfile.ZipFile, name: str, size: int) -> bytes:
    # Never more than `size` bytes inflated: sniffing runs in the API process, and a
    # compressed manifest could be a zip bomb.
    with archive.open(name) as entry:
        return entry.read(size)


def _local_entries(data: bytes) -> tuple[list[str], bytes]:
    """Entry names from the local file headers, and a stored `mimetype` entry's content."""
    names: list[str] = []
    mimetype = b""
    position = 0
    while len(names) < 2000:
        position = data.find(_ZIP_MAGIC, position)
        if position < 0 or position + 30 > len(data):
            break
        (method,) = struct.unpack_from("<H", data, position + 8)
        compressed, _, name_len, extra_len = struct.unpack_from("<IIHH", data, position + 18)
        start = position + 30
        name = data[start : start + name_len].decode("utf-8", "replace")
        names.append(name)
        if name == "mimetype" and method == 0:
            body = start + name_len + extra_len
            mimetype = data[body : body + min(compressed, 100)]
        position = start + name_len
    return names, mimetype
