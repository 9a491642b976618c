"""Text extraction against the real corpus: encodings, broken PDFs, sniffing, time limits."""

import io
import multiprocessing
import os
import pickle
import random
import signal
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from rag_pipeline.core.extract import (
    ERROR_CODES,
    GARBLED_FAIL_SHARE,
    MEDIA_MARKDOWN,
    MEDIA_PDF,
    MEDIA_TEXT,
    ExtractedText,
    ExtractionError,
    decode_text,
    extract,
    extract_document,
    garbled_share,
    normalize_text,
    sniff_media_type,
)

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RAG_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
# The asset check warns above this share; every readable corpus document stays below it.
WARN_SHARE = 0.05
SLOW_PDF = "pdf_problem/pdfjs_bug1978317.pdf"


def read(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def files_in(folder: str) -> set[str]:
    return {path.name for path in (CORPUS / folder).iterdir() if path.is_file()}


# file -> (encoding, words that must appear in the decoded text)
TEXT_FILES: dict[str, tuple[str, list[str]]] = {
    "text/gutenberg_pride-and-prejudice_1342-0.txt": (
        "utf-8-sig",
        ["The Project Gutenberg EBook of Pride and Prejudice", "universally acknowledged"],
    ),
    "text/gutenberg_devils-dictionary_972.txt": (
        "utf-8",
        ["The Devil's Dictionary", "Poor Isabella's Dead"],
    ),
    "text/uns_norwich-city.txt": ("utf-8", ["Iwan Roberts", "Norwich City"]),
    "text/uns_UDHR_first_article_all.txt": (
        "utf-8",
        ["Все люди рождаются свободными", "人人生而自由", "يولد جميع الناس", "모든 인간은"],
    ),
    "text/uns_fake-text-utf-16.txt": ("utf-16-le", ["This is a test document", "Doylestown"]),
    "text/chardet_shift_jis_rashomon.txt": (
        "shift_jis",
        [
            "Rashomon by AKUTAGAWA",
            "羅生門",
            "芥川龍之介",
            "一人の下人が、羅生門の下で雨やみを待っていた",
        ],
    ),
    "text/chardet_euc-kr_korean.txt": (
        "euc_kr",
        ["북조선 사람들은 흔히 자국을 조선(朝鮮)이나", "조선민주주의인민공화국"],
    ),
    "text/chardet_windows-1252_dutch.txt": (
        "cp1252",
        ["Stipan Arkadiewitsch was tegenover zich zelf", "dat zij al…. Ach"],
    ),
    "markdown/uns_umlauts-non-utf8.md": ("iso-8859-1", ["## können", "äöüß"]),
    "markdown/fpb_free-programming-books-ja.md": ("utf-8", ["言語非依存", "ガベージコレクション"]),
    "markdown/fpb_free-programming-books-ko.md": ("utf-8", ["아마존 웹 서비스를 다루는 기술"]),
    "markdown/fpb_free-programming-books-zh.md": ("utf-8-sig", ["## 目录", "语言无关"]),
    "markdown/haystack_sample.md": ("utf-8", ["type: intro", "## What to build with Haystack"]),
    "markdown/plumber_README.md": ("utf-8", ["# pdfplumber", "## Table of Contents"]),
    "markdown/pypdf_extract-text.md": ("utf-8", ["# Extract Text from a PDF"]),
    "markdown/uns_codeblock.md": ("utf-8", ["## HTML Example", "<!DOCTYPE html>"]),
}
EMPTY_TEXT_FILES = ["text/uns_empty.txt", "text/uns_fake-text-all-whitespace.txt"]

# file -> (page count stated in SOURCES.tsv, a phrase from the document)
PDFS: dict[str, tuple[int, str]] = {
    "gutenberg_intro-to-mathematics_41568-pdf.pdf": (228, "Ampère"),  # TeX accent "Amp`ere"
    "gutenberg_pride-and-prejudice_1342-pdf.pdf": (234, "Pride and Prejudice, by Jane Austen"),
    "haystack_react_paper.pdf": (31, "SYNERGIZING REASONING AND ACTING"),
    "haystack_sample_pdf_1.pdf": (4, "A sample PDF file"),
    "haystack_sample_pdf_2.pdf": (4, "A wiki"),
    "pdfjs_freeculture.pdf": (352, "This PDF version of Free Culture is licensed"),
    "pdfjs_pdkids.pdf": (55, "Public domain texts for young people."),
    "pdfminer_dmca.pdf": (18, "THE DIGITAL MILLENNIUM COPYRIGHT ACT OF 1998"),
    "pdfminer_i1040nr.pdf": (50, "Form 1040NR"),
    "pdfminer_naacl06-shinyama.pdf": (8, "Preemptive Information Extraction"),
    "plumber_federal-register-2020-17221.pdf": (15, "FEDERAL REGISTER"),
    "plumber_nics-background-checks-2015-11.pdf": (1, "Handgun"),
    "plumber_scotus-transcript-p1.pdf": (1, "IN THE SUPREME COURT OF THE UNITED STATES"),
    "pypdf_Seige_of_Vicksburg_Sample_OCR.pdf": (6, "VICKSBURG"),
    "pypdf_r6-empty-password.pdf": (1, "pdf encryption test"),
    "sf_GeoTopo-komprimiert.pdf": (117, "Einführung in die\nGeometrie und Topologie"),
    "sf_google-doc-document.pdf": (1, "Beautiful is better than ugly."),
    "sf_minimal-document.pdf": (1, "Lorem ipsum dolor sit amet"),
    "sf_multicolumn.pdf": (3, "Two-Column Document with Lorem Ipsum"),
    "sf_pdflatex-4-pages.pdf": (4, "Hello, here is some text without a meaning."),
    "uns_fr_olap.pdf": (12, "Résumés et interrogations de logs de requêtes OLAP"),
    "uns_layout-parser-paper-with-empty-pages.pdf": (4, "LayoutParser: A Unified Toolkit"),
    "uns_multi-column.pdf": (13, "Dense Passage Retrieval for Open-Domain Question Answering"),
    "uns_pdf2image-memory-error-test-400p.pdf": (400, "IDRS Terminal Responses"),
    "uns_rotated-page-90.pdf": (1, "Hello World Test Text"),
}

# Decided by running pypdf 7.1 on each file and reading its SOURCES.tsv description.
# "ok" means extraction recovers the document; the phrase must then be in its text.
PROBLEM_PDFS: dict[str, tuple[str, str]] = {
    "plumber_empty.pdf": ("empty_file", ""),
    "sf_libreoffice-writer-password.pdf": ("password_required", ""),
    "pypdf_r6-both-passwords.pdf": ("password_required", ""),
    "pdfminer_rc4-40.pdf": ("password_required", ""),
    "uns_password.pdf": ("password_required", ""),
    "pdfjs_issue19484_2.pdf": ("damaged_pdf", ""),  # RC4 key length 48: cannot decrypt
    "pdfjs_bug1020226.pdf": ("damaged_pdf", ""),  # 184 bytes, ends inside an image
    "pdfjs_Pages-tree-refs.pdf": ("damaged_pdf", ""),  # page tree loops back on itself
    "pdfjs_filled-background.pdf": ("damaged_pdf", ""),  # trips a pypdf limit; no text anyway
    "haystack_non_text_searchable.pdf": ("no_text_layer", ""),
    "pgpt_file_scanned.pdf": ("no_text_layer", ""),
    "pdfjs_empty.pdf": ("no_text_layer", ""),
    "pdfjs_bug1978317.pdf": ("extraction_timeout", ""),  # ~10 s of pypdf on one page
    "pdfjs_arial_unicode_en_cidfont.pdf": ("garbled_text", ""),  # "5IJT\x01JT" for "This is"
    "pdfjs_TAMReview.pdf": ("garbled_text", ""),  # pages 2-23 come out as /g18/g152...
    "pdfjs_issue19800.pdf": ("ok", "Hello world"),  # no xref, no startxref: rebuilt
    "pdfjs_helloworld-bad.pdf": ("ok", "Hello, world!"),  # wrong xref offsets
    "pdfminer_zen_of_python_corrupted.pdf": ("ok", "Readability counts."),
    "uns_pdf-with-ocr-text.pdf": ("ok", "progress of the Foundation"),  # poor but real OCR
}

INTL_PDFS: dict[str, tuple[str, str]] = {
    "pdfjs_90ms_rksj_h_sample.pdf": ("ok", "日本語テスト"),
    "pdfjs_bug1627427_reduced.pdf": ("ok", "눈이 올 듯하더니 눈은 아니 오고"),
    "pdfjs_issue16063.pdf": ("ok", "電線接続端子部が次のいずれにも該当しないとき。"),
    "plumber_issue-67-example.pdf": ("ok", "东北电气发展股份有限公司 2018 年第一季度报告全文"),
    "sf_habibi.pdf": ("ok", "حَبيبي habibi"),
    "uns_korean-text-with-tables.pdf": ("ok", "적립 제외 대상"),
    "pdfjs_XiaoBiaoSong.pdf": ("garbled_text", ""),  # GBK bytes read as Latin-1: "Ä¿ ¹Ø"
    "pdfjs_noembed-eucjp.pdf": ("garbled_text", ""),  # EUC kana as Yi syllables: "꒢꒤"
    "pdfjs_vertical.pdf": ("garbled_text", ""),  # combining marks and unassigned codes
    "pdfminer_jo.pdf": ("garbled_text", ""),  # Japanese shifted into Greek/Bengali/...
}


def forkserver_children() -> list[tuple[int, str]]:
    """(pid, state) of every live or zombie child of this process's fork server."""
    procs: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        procs[int(stat.parent.name)] = (int(fields[1]), fields[0])
    servers = set()
    for pid, (ppid, _) in procs.items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if ppid == os.getpid() and b"multiprocessing.forkserver" in cmdline:
            servers.add(pid)
    return [(pid, state) for pid, (ppid, state) in procs.items() if ppid in servers]


def assert_no_child_left() -> None:
    assert multiprocessing.active_children() == []
    assert forkserver_children() == []


def assert_readable_message(err: ExtractionError) -> None:
    assert err.code in ERROR_CODES
    message = str(err)
    assert message == err.message
    assert "\n" not in message and 10 < len(message) <= 200, message
    assert "Traceback" not in message and "{'/" not in message, message


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


def test_the_tables_cover_every_corpus_file() -> None:
    assert files_in("text") == {
        Path(rel).name for rel in [*TEXT_FILES, *EMPTY_TEXT_FILES] if rel.startswith("text/")
    }
    assert files_in("markdown") == {
        Path(rel).name for rel in TEXT_FILES if rel.startswith("markdown/")
    }
    assert files_in("pdf") == set(PDFS)
    assert files_in("pdf_problem") == set(PROBLEM_PDFS)
    assert files_in("pdf_intl") == set(INTL_PDFS)


@pytest.mark.parametrize("rel", sorted(TEXT_FILES))
def test_text_files_decode_to_the_right_text(rel: str) -> None:
    encoding, words = TEXT_FILES[rel]
    text, detected = decode_text(read(rel))
    assert detected == encoding
    for word in words:
        assert word in text
    assert "\ufffd" not in text
    assert not text.startswith("\ufeff")
    if rel != "text/uns_norwich-city.txt":  # its mojibake is in the source file itself
        assert garbled_share(text) < 0.01


@pytest.mark.parametrize("rel", sorted(TEXT_FILES))
def test_text_files_extract_as_one_normalised_page(rel: str) -> None:
    result = extract(read(rel), Path(rel).name)
    assert result.media_type == (MEDIA_MARKDOWN if rel.endswith(".md") else MEDIA_TEXT)
    assert result.encoding == TEXT_FILES[rel][0]
    assert result.page_count == 1 and [page.number for page in result.pages] == [1]
    assert "\r" not in result.text
    assert result.chars == len(result.text) > 0
    for word in TEXT_FILES[rel][1]:
        assert normalize_text(word) in result.text


def test_line_endings_of_real_files_become_lf() -> None:
    pride = extract(read("text/gutenberg_pride-and-prejudice_1342-0.txt"), "pride.txt")
    assert "It is a truth universally acknowledged, that a single man in possession\nof a" in (
        pride.text
    )
    # Old-Mac CR-only line ends: the lines must stay separate, not run together.
    rashomon = extract(read("text/chardet_shift_jis_rashomon.txt"), "rashomon.txt")
    assert "羅生門\n\n芥川龍之介" in rashomon.text


def test_dirty_real_world_text_is_flagged_but_accepted() -> None:
    text, _ = decode_text(read("text/uns_norwich-city.txt"))
    assert 0.01 < garbled_share(text) < WARN_SHARE
    assert extract(read("text/uns_norwich-city.txt"), "norwich.txt").chars > 40_000


@pytest.mark.parametrize("rel", EMPTY_TEXT_FILES)
def test_empty_and_whitespace_only_files_are_empty(rel: str) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(read(rel), Path(rel).name)
    assert caught.value.code == "empty_file"
    assert_readable_message(caught.value)


def test_normalize_text() -> None:
    assert normalize_text("ﬁle ﬂow") == "file flow"
    assert normalize_text("a\r\nb\rc\n") == "a\nb\nc\n"
    assert normalize_text("nul\x00 bell\x07 esc\x1b tab\tkept") == "nul bell esc tab\tkept"
    assert normalize_text("trailing   \nspace\t\nend  ") == "trailing\nspace\nend"
    assert normalize_text("para one\n\npara two") == "para one\n\npara two"
    assert normalize_text("page\x0cbreak") == "page\nbreak"
    assert normalize_text("ＡＢＣ１２３") == "ABC123"


def test_ligatures_in_a_real_pdf_are_unfolded() -> None:
    rel = "pdf/uns_layout-parser-paper-with-empty-pages.pdf"
    raw = PdfReader(io.BytesIO(read(rel)), strict=False).pages[0].extract_text()
    assert "Uni\ufb01ed" in raw
    result = extract(read(rel), "layout.pdf")
    assert "LayoutParser: A Unified Toolkit" in result.text
    assert "\ufb01" not in result.text


def test_tex_spacing_accents_join_their_letters() -> None:
    dpr = extract(read("pdf/uns_multi-column.pdf"), "dpr.pdf").text
    assert "Barlas Oğuz" in dpr and "Baudiš" in dpr  # pypdf gives "O˘guz", "Baudiˇs"
    assert "˘" not in dpr and "ˇ" not in dpr


@pytest.mark.parametrize("name", sorted(PDFS))
def test_every_good_pdf_extracts(name: str) -> None:
    pages, phrase = PDFS[name]
    result = extract_document(read(f"pdf/{name}"), name)
    assert result.media_type == MEDIA_PDF and result.encoding is None
    assert result.page_count == pages
    assert [page.number for page in result.pages] == list(range(1, pages + 1))
    assert result.failed_pages == ()
    assert result.chars > 0
    assert phrase in result.text
    assert garbled_share(result.text) < WARN_SHARE


def test_encrypted_pdfs_with_an_empty_password_open() -> None:
    aes = extract_document(read("pdf/pypdf_r6-empty-password.pdf"), "aes.pdf")
    assert aes.pages[0].text == "pdf encryption test\npassword: asdfzxcv"
    rc4 = extract_document(read("pdf/pdfminer_dmca.pdf"), "rc4.pdf")
    assert "U.S. Copyright Office" in rc4.text and rc4.page_count == 18


def test_blank_pages_keep_their_numbers() -> None:
    result = extract(read("pdf/uns_layout-parser-paper-with-empty-pages.pdf"), "lp.pdf")
    assert [bool(page.text.strip()) for page in result.pages] == [True, False, False, True]
    assert result.text == "\n\n".join(page.text for page in result.pages)
    assert result.chars == sum(len(page.text) for page in result.pages)


def check_outcome(folder: str, name: str, expected: str, phrase: str, timeout_s: float) -> None:
    started = time.monotonic()
    try:
        result = extract_document(read(f"{folder}/{name}"), name, timeout_s=timeout_s)
    except ExtractionError as err:
        assert err.code == expected, f"{name}: {err.code}: {err}"
        assert_readable_message(err)
    else:
        assert expected == "ok", f"{name} extracted, expected {expected}"
        assert phrase in result.text
        assert garbled_share(result.text) < WARN_SHARE
    # The bound is processor time; a busy machine stretches it to twice that in wall time.
    assert time.monotonic() - started < 2 * timeout_s + 2
    assert_no_child_left()


@pytest.mark.parametrize("name", sorted(PROBLEM_PDFS))
def test_problem_pdfs_fail_cleanly_or_recover(name: str) -> None:
    expected, phrase = PROBLEM_PDFS[name]
    check_outcome("pdf_problem", name, expected, phrase, 3 if expected.endswith("timeout") else 60)


@pytest.mark.parametrize("name", sorted(INTL_PDFS))
def test_international_pdfs_extract_or_are_flagged_as_garbled(name: str) -> None:
    expected, phrase = INTL_PDFS[name]
    check_outcome("pdf_intl", name, expected, phrase, 60)


def test_garbled_share_recognises_broken_extraction() -> None:
    assert garbled_share("/g18/g152/g135/g148 /g3/g145") == 1.0
    assert garbled_share("(cid:12)(cid:40) (cid:7)") == 1.0
    assert garbled_share("/uni4E00/uni4E8C") == 1.0
    assert garbled_share("cafÃ© dÃ©jÃ  vu â€™tis") > 0.5
    assert garbled_share("\ufffd\ufffd \ufffd") == 1.0
    assert garbled_share("Ä¿ ¡¡ Â¼ ¹Ø ÓÚ ºì") > GARBLED_FAIL_SHARE
    for clean in (
        "The quick brown fox jumps over the lazy dog. Café, naïve, Größe, déjà vu.",
        "電線接続端子部が次のいずれにも該当しないとき。ねじ止め端子であること。",
        "Все люди рождаются свободными. حَبيبي habibi. 모든 인간은. äöüß können",
        "See https://github.com/authorNari/g1gc-impl-book and /usr/lib/g1 for 𝑓(𝑥) = αx²",
        "",
    ):
        assert garbled_share(clean) == 0.0, clean


def test_glyph_name_pages_make_the_document_garbled() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(read("pdf_problem/pdfjs_TAMReview.pdf"), "tam.pdf")
    assert caught.value.code == "garbled_text"
    page_two = PdfReader(io.BytesIO(read("pdf_problem/pdfjs_TAMReview.pdf"))).pages[1]
    assert garbled_share(page_two.extract_text()) > 0.9


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
        (tiny_png(), "scan.pdf", "PNG image"),
        (tiny_png(), "scan.txt", "PNG image"),
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


def test_zip_based_office_files_are_unsupported() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(ExtractionError) as caught:
        extract(buffer.getvalue(), "letter.docx")
    assert caught.value.code == "unsupported_type"


def test_zero_bytes_are_empty_whatever_the_name() -> None:
    for name in ("a.pdf", "a.txt", "a.md", "a"):
        with pytest.raises(ExtractionError) as caught:
            sniff_media_type(b"", name)
        assert caught.value.code == "empty_file"


def test_nul_bytes_mean_binary_unless_utf16_or_a_stray_one() -> None:
    assert decode_text("Grüße aus Köln\n".encode("utf-16-le")) == ("Grüße aus Köln\n", "utf-16-le")
    assert extract(b"an export with a stray\x00 NUL", "export.txt").text == (
        "an export with a stray NUL"
    )
    with pytest.raises(ExtractionError) as caught:
        decode_text(b"header\x00\x00\x00\x01\x02 payload" * 20)
    assert caught.value.code == "unsupported_type"


def test_one_broken_byte_does_not_turn_utf8_into_mojibake() -> None:
    data = "Grüße, 日本語のテキスト, naïve café. ".encode() * 20 + b"\xff"
    text, encoding = decode_text(data)
    assert encoding == "utf-8"
    assert text.startswith("Grüße, 日本語のテキスト") and text.endswith("\ufffd")


def test_extract_document_kills_a_hung_child() -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionError) as caught:
        extract_document(read(SLOW_PDF), "slow.pdf", timeout_s=1)
    elapsed = time.monotonic() - started
    assert caught.value.code == "extraction_timeout"
    assert str(caught.value) == "text extraction took longer than 1 s"
    assert elapsed < 3.5, elapsed  # 1 s of processor time, at most 2 s of wall time
    assert_no_child_left()
    # The fork server survives a killed child and serves the next document normally.
    assert (
        "Hello, world!"
        in extract_document(read("pdf_problem/pdfjs_helloworld-bad.pdf"), "h.pdf").text
    )
    assert_no_child_left()


def test_the_time_bound_counts_processor_time_up_to_twice_the_wall_time() -> None:
    """A child that gets no processor (a busy machine, here SIGSTOP) is not timed out at the
    bound in wall time, only at twice it; one that computes is timed out at the bound."""
    outcome: list[BaseException | ExtractedText] = []

    def run() -> None:
        try:
            outcome.append(extract_document(read(SLOW_PDF), "slow.pdf", timeout_s=2))
        except BaseException as err:
            outcome.append(err)

    started = time.monotonic()
    worker = threading.Thread(target=run)
    worker.start()
    while not (children := forkserver_children()) and time.monotonic() < started + 10:
        time.sleep(0.01)
    os.kill(children[0][0], signal.SIGSTOP)
    worker.join(10)
    elapsed = time.monotonic() - started
    err = outcome[0]
    assert isinstance(err, ExtractionError) and err.code == "extraction_timeout"
    # Twice the bound, plus the second that reaping a stopped child takes.
    assert 4.5 < elapsed < 7, elapsed
    assert_no_child_left()


def test_extract_document_reports_a_crashed_child() -> None:
    outcome: list[BaseException | ExtractedText] = []

    def run() -> None:
        try:
            outcome.append(extract_document(read(SLOW_PDF), "slow.pdf", timeout_s=30))
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not (children := forkserver_children()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(children) == 1
    time.sleep(0.5)  # let it receive the document and get into pypdf (which takes ~10 s)
    os.kill(children[0][0], signal.SIGSEGV)  # what a crash in a C extension looks like
    worker.join(10)
    assert not worker.is_alive()
    err = outcome[0]
    assert isinstance(err, ExtractionError) and err.code == "damaged_pdf"
    assert "SIGSEGV" in str(err)
    assert_no_child_left()


def test_results_cross_the_process_boundary_intact() -> None:
    data = read("pdf/sf_pdflatex-4-pages.pdf")
    assert extract_document(data, "four.pdf") == extract(data, "four.pdf")
    err = ExtractionError("password_required", "the PDF is password-protected")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.code, str(clone)) == (err.code, str(err))
    with pytest.raises(ValueError):
        ExtractionError("no_such_code", "whatever")
