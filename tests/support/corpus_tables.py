"""The corpus files and what extraction must make of each, shared by the extraction tests,
the problem-document tests and the corpus sweep."""

from bench.harness.corpus import CORPUS as CORPUS

# The pypdf the PDF tables below were made with (`pypdf.__version__`): their "ok" phrases and
# failure codes are pypdf's reading of each file, so another version may need them revisited.
PYPDF_VERSION = "7.1.1"


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

# Decided by running pypdf (PYPDF_VERSION), and Tesseract on pages without text, on each file
# and reading its SOURCES.tsv description.
# "ok" means extraction recovers the document; the phrase must then be in its text. For
# "garbled_text" the phrase, where there is one, is the true text SOURCES.tsv gives: pypdf's
# reading must not contain it, which shows the text is really garbled and not merely unusual.
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
    # Scans without a text layer, read by OCR.
    "haystack_non_text_searchable.pdf": ("ok", "This is an example of a non-text-searchable PDF"),
    "pgpt_file_scanned.pdf": ("ok", "THE SLEREXE COMPANY LIMITED"),
    "pdfjs_empty.pdf": ("no_text_layer", ""),
    "pdfjs_bug1978317.pdf": ("extraction_timeout", ""),  # ~10 s of pypdf on one page
    "pdfjs_arial_unicode_en_cidfont.pdf": (  # "5IJT\x01JT" for "This is"
        "garbled_text",
        "This is an Arial Unicode PDF from OpenOffice.",
    ),
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
    "pdfjs_noembed-eucjp.pdf": ("garbled_text", "あいうえお"),  # EUC kana as Yi syllables: "꒢꒤"
    "pdfjs_vertical.pdf": ("garbled_text", "日本語"),  # combining marks and unassigned codes
    "pdfminer_jo.pdf": ("garbled_text", ""),  # Japanese shifted into Greek/Bengali/...
}
