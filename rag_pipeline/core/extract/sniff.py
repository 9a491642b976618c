"""Media-type sniffing: by content, with the name only telling Markdown from plain text."""

from rag_pipeline.core.extract.model import ExtractionError
from rag_pipeline.core.extract.text import decode_text

MEDIA_PDF = "application/pdf"
MEDIA_MARKDOWN = "text/markdown"
MEDIA_TEXT = "text/plain"

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
    return sniff(data, filename)[0]


def sniff(data: bytes, filename: str) -> tuple[str, tuple[str, str] | None]:
    """`sniff_media_type`, plus a text file's decoded text and encoding (None for binary
    formats), so that deciding the type and reading the text decode it only once."""
    if not data:
        raise ExtractionError("empty_file", "the file is empty (0 bytes)")
    if looks_like_pdf(data):
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


def looks_like_pdf(data: bytes) -> bool:
    position = data.find(_PDF_MAGIC, 0, 1024)
    if position == 0:
        return True
    # Readers accept junk before the header, but a text file may also quote "%PDF-1.7",
    # so off-zero headers need the end-of-file markers a PDF writer always emits.
    tail = data[-2048:]
    return position > 0 and (b"%%EOF" in tail or b"startxref" in tail)
