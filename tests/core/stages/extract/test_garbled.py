"""The garbage verdict: broken fonts and unknown encodings fail, real text in any script passes."""

import io

import pypdf
import pytest
from pypdf import PdfReader
from support.corpus_tables import INTL_PDFS, PROBLEM_PDFS, PYPDF_VERSION, read

from rag_pipeline.core.stages.extract import (
    GARBLED_FAIL_SHARE,
    ExtractionError,
    extract,
    garbled_share,
    normalize_text,
)
from rag_pipeline.core.stages.extract.formats.pdf import pdf_pages


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


TRUE_TEXTS = [
    (f"{folder}/{name}", phrase)
    for folder, table in (("pdf_problem", PROBLEM_PDFS), ("pdf_intl", INTL_PDFS))
    for name, (code, phrase) in table.items()
    if code == "garbled_text" and phrase
]


def unspaced(text: str) -> str:
    return "".join(text.split())


def test_every_garbled_pdf_with_a_known_true_text_is_checked() -> None:
    assert sorted(rel for rel, _ in TRUE_TEXTS) == [
        "pdf_intl/pdfjs_noembed-eucjp.pdf",
        "pdf_intl/pdfjs_vertical.pdf",
        "pdf_problem/pdfjs_arial_unicode_en_cidfont.pdf",
    ]


@pytest.mark.parametrize(("rel", "true_text"), TRUE_TEXTS)
def test_garbled_pdfs_do_not_contain_their_true_text(rel: str, true_text: str) -> None:
    """The `garbled_text` verdicts are no snapshot of whatever pypdf printed: the text
    SOURCES.tsv says each document holds is really missing from what pypdf reads."""
    with pytest.raises(ExtractionError) as caught:
        extract(read(rel), "garbled.pdf")
    assert caught.value.code == "garbled_text"
    assert garbled_share(true_text) == 0.0
    read_text = normalize_text("\n".join(pdf_pages(read(rel)).pages))
    assert read_text.strip()
    # Spacing aside: a reading that only lost the spaces would still be the true text.
    assert unspaced(true_text) not in unspaced(read_text), (
        f"pypdf {pypdf.__version__} now reads {rel} (tables made with {PYPDF_VERSION})"
    )
