"""Text and Markdown files: the right encoding, the right text, normalised."""

from pathlib import Path

import pytest
from support.corpus_tables import EMPTY_TEXT_FILES, TEXT_FILES, files_in, read
from support.extraction import WARN_SHARE, assert_readable_message

from rag_pipeline.core.stages.extract import (
    MEDIA_MARKDOWN,
    MEDIA_TEXT,
    ExtractionError,
    decode_text,
    extract,
    garbled_share,
    normalize_text,
)


def test_the_tables_cover_every_text_file() -> None:
    assert files_in("text") == {
        Path(rel).name for rel in [*TEXT_FILES, *EMPTY_TEXT_FILES] if rel.startswith("text/")
    }
    assert files_in("markdown") == {
        Path(rel).name for rel in TEXT_FILES if rel.startswith("markdown/")
    }


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
