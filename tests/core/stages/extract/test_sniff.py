"""Media-type sniffing: by content, never trusting the name for anything but Markdown."""

import io
import random
import struct
import zipfile
import zlib

import pytest
from support.corpus_tables import read
from support.extraction import assert_readable_message

from rag_pipeline.core.stages.extract import (
    MEDIA_MARKDOWN,
    MEDIA_PDF,
    MEDIA_TEXT,
    ExtractionError,
    accept,
    extract,
    sniff_media_type,
)
from rag_pipeline.core.stages.extract.sniff import (
    MEDIA_DOCX,
    MEDIA_EPUB,
    MEDIA_HTML,
    MEDIA_JPEG,
    MEDIA_ODT,
    MEDIA_PNG,
    MEDIA_PPTX,
    MEDIA_RTF,
    MEDIA_TIFF,
    MEDIA_XLSX,
)


def tiny_png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_sniffing_goes_by_content() -> None:
    pdf = read("pdf/sf_minimal-document.pdf")
    assert sniff_media_type(pdf, "renamed.txt") == MEDIA_PDF
    assert extract(pdf, "renamed.txt").text == extract(pdf, "real.pdf").text
    assert sniff_media_type(read("markdown/haystack_sample.md"), "notes.markdown") == MEDIA_MARKDOWN
    assert sniff_media_type(read("markdown/haystack_sample.md"), "notes.txt") == MEDIA_TEXT
    assert sniff_media_type(read("text/chardet_euc-kr_korean.txt"), "README") == MEDIA_TEXT
    quoting = b"# PDF notes\n\nEvery file starts with `%PDF-1.7`.\n"
    assert sniff_media_type(quoting, "notes.md") == MEDIA_MARKDOWN
    # Truncated, but still a PDF: the name does not matter, the damage does.
    with pytest.raises(ExtractionError) as caught:
        extract(read("pdf_problem/pdfjs_bug1020226.pdf"), "truncated.txt")
    assert caught.value.code == "damaged_pdf"


@pytest.mark.parametrize(
    ("data", "filename", "says"),
    [
        (b"GIF89a" + bytes(64), "scan.pdf", "GIF image"),
        (b"GIF89a" + bytes(64), "scan.txt", "GIF image"),
        (random.Random(7).randbytes(4096), "report.pdf", "not a PDF"),
        (random.Random(7).randbytes(4096), "notes.txt", "binary"),
        (b"\x7fELF\x02\x01\x01" + bytes(64), "tool.md", "executable"),
        (b"<html><body>404 Not Found</body></html>", "paper.pdf", "not a PDF"),
    ],
)
def test_binary_and_mislabelled_uploads_are_unsupported(
    data: bytes, filename: str, says: str
) -> None:
    with pytest.raises(ExtractionError) as caught:
        sniff_media_type(data, filename)
    assert caught.value.code == "unsupported_type"
    assert says in str(caught.value)
    assert_readable_message(caught.value)


def test_a_zip_is_sniffed_by_what_it_holds_not_its_name() -> None:
    def archive(entries: dict[str, str]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            for name, content in entries.items():
                zipped.writestr(name, content)
        return buffer.getvalue()

    docx = read("office/markitdown_test.docx")
    for name in ("report.xlsx", "report.zip", "report"):
        assert sniff_media_type(docx, name) == MEDIA_DOCX
    assert sniff_media_type(read("office/uns_stanley-cups.xlsx"), "cups.docx") == MEDIA_XLSX
    assert sniff_media_type(read("office/markitdown_test.pptx"), "deck.odt") == MEDIA_PPTX
    assert sniff_media_type(read("office/pandoc_wasteland.epub"), "poem.zip") == MEDIA_EPUB
    assert sniff_media_type(read("office/docling_text_document_01.odt"), "a.epub") == MEDIA_ODT
    # Truncated: the central directory is gone, the local headers still name the parts.
    assert sniff_media_type(docx[: len(docx) // 2], "half.docx") == MEDIA_DOCX
    epub = read("office/uns_winter-sports.epub")
    assert sniff_media_type(epub[:5000], "half.epub") == MEDIA_EPUB
    for zipped, says in (
        (archive({"notes.txt": "hello"}), "ZIP archive"),
        (archive({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"}), "(.ods)"),
    ):
        with pytest.raises(ExtractionError) as caught:
            sniff_media_type(zipped, "letter.docx")
        assert caught.value.code == "unsupported_type"
        assert says in str(caught.value)
        assert_readable_message(caught.value)


def test_images_html_and_rtf_are_sniffed_by_content() -> None:
    assert sniff_media_type(tiny_png(), "scan.pdf") == MEDIA_PNG
    assert sniff_media_type(read("scanned/uns_jpn-vert.jpeg"), "a.txt") == MEDIA_JPEG
    assert sniff_media_type(read("scanned/tesstest_phototest.tif"), "a.png") == MEDIA_TIFF
    assert sniff_media_type(read("html/readability_bbc-1.html"), "page.txt") == MEDIA_HTML
    assert sniff_media_type(read("html/readability_qq.html"), "page") == MEDIA_HTML
    assert sniff_media_type(read("office/tika_testRTFJapanese.rtf"), "a.txt") == MEDIA_RTF
    # Markdown that shows HTML in a code block is still Markdown.
    assert sniff_media_type(read("markdown/uns_codeblock.md"), "a.md") == MEDIA_MARKDOWN


def test_zero_bytes_are_empty_whatever_the_name() -> None:
    for name in ("a.pdf", "a.txt", "a.md", "a"):
        with pytest.raises(ExtractionError) as caught:
            sniff_media_type(b"", name)
        assert caught.value.code == "empty_file"


def test_accept_names_the_type_and_turns_blank_text_away() -> None:
    assert accept(read("pdf/sf_minimal-document.pdf"), "paper.pdf") == MEDIA_PDF
    assert accept(read("text/uns_fake-text-utf-16.txt"), "notes.md") == MEDIA_MARKDOWN
    for blank in (read("text/uns_fake-text-all-whitespace.txt"), " \n\t".encode("utf-16")):
        with pytest.raises(ExtractionError) as caught:
            accept(blank, "blank.txt")
        assert caught.value.code == "empty_file"
        assert_readable_message(caught.value)
