import itertools
from pathlib import Path

import pytest

from rag_pipeline.core.stages.chunking import (
    MIN_CHUNK_TOKENS,
    PAGE_SEPARATOR,
    ChunkingError,
    chunk_pages,
    load_tokenizer,
)
from rag_pipeline.core.stages.embedders import bundled_model_dir

MAX_TOKENS = 254


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(bundled_model_dir() / "tokenizer.json"))


def _model_tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_no_chunk_exceeds_the_model_limit_on_a_real_book(tokenizer, corpus: Path) -> None:
    text = (corpus / "text/gutenberg_pride-and-prejudice_1342-0.txt").read_text("utf-8-sig")
    chunks = chunk_pages("pp", [(1, text)], tokenizer, max_tokens=MAX_TOKENS)
    assert len(chunks) > 500
    counted = [_model_tokens(tokenizer, c.text) for c in chunks]
    # Re-encoding each chunk alone, as the model will, stays within chunk_size.
    assert max(counted) <= 200
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text


def test_chunks_overlap_by_about_the_configured_tokens(tokenizer, corpus: Path) -> None:
    text = (corpus / "text/uns_norwich-city.txt").read_text("utf-8")
    chunks = chunk_pages(
        "n", [(1, text)], tokenizer, chunk_size=120, chunk_overlap=30, max_tokens=MAX_TOKENS
    )
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start < prev.char_end, "consecutive chunks share their boundary text"
        shared = _model_tokens(tokenizer, text[nxt.char_start : prev.char_end])
        # The overlap is the longest tail of whole words within 30 tokens: one word more (a
        # long URL, say, which is why some overlaps are short) would exceed them.
        word = nxt.char_start
        while word > prev.char_start and text[word - 1].isspace():
            word -= 1
        while word > prev.char_start and not text[word - 1].isspace():
            word -= 1
        longer = _model_tokens(tokenizer, text[word : prev.char_end])
        assert shared <= 30 < longer, (shared, longer, text[word : nxt.char_start])


def test_boundaries_prefer_paragraphs_then_sentences(tokenizer) -> None:
    para = "This sentence has exactly some words in it for testing. " * 6
    text = "\n\n".join(para.strip() for _ in range(8))
    chunks = chunk_pages(
        "p", [(1, text)], tokenizer, chunk_size=100, chunk_overlap=0, max_tokens=MAX_TOKENS
    )
    for chunk in chunks:
        assert chunk.text.endswith("."), f"chunk ends mid-sentence: {chunk.text[-40:]!r}"


def test_pages_and_offsets_follow_the_document_text(tokenizer) -> None:
    pages = [
        (1, "Alpha beta gamma. " * 80),
        (2, "Delta epsilon zeta. " * 80),
        (3, "Eta theta. " * 80),
    ]
    chunks = chunk_pages(
        "d", pages, tokenizer, chunk_size=60, chunk_overlap=10, max_tokens=MAX_TOKENS
    )
    full = PAGE_SEPARATOR.join(text for _, text in pages)
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        assert full[chunk.char_start : chunk.char_end] == chunk.text
        first_word = chunk.text.split()[0]
        expected_page = {
            "Alpha": 1,
            "beta": 1,
            "gamma.": 1,
            "Delta": 2,
            "epsilon": 2,
            "zeta.": 2,
            "Eta": 3,
            "theta.": 3,
        }[first_word]
        assert chunk.page == expected_page


def test_a_title_is_merged_into_its_neighbour(tokenizer) -> None:
    text = "Chapter One\n\n" + "The story begins on a cold morning in the north. " * 30
    chunks = chunk_pages(
        "t", [(1, text)], tokenizer, chunk_size=120, chunk_overlap=0, max_tokens=MAX_TOKENS
    )
    counted = [_model_tokens(tokenizer, c.text) for c in chunks]
    assert min(counted) >= MIN_CHUNK_TOKENS
    assert [c.tokens for c in chunks] == counted, "each chunk reports its own token count"
    assert chunks[0].text.startswith("Chapter One")


def test_text_without_spaces_is_cut_into_windows(tokenizer, corpus: Path) -> None:
    text = (corpus / "text/chardet_shift_jis_rashomon.txt").read_bytes().decode("shift_jis")
    chunks = chunk_pages("ja", [(1, text)], tokenizer, max_tokens=MAX_TOKENS)
    assert len(chunks) > 10
    assert max(_model_tokens(tokenizer, c.text) for c in chunks) <= MAX_TOKENS


def test_empty_text_yields_no_chunks(tokenizer) -> None:
    assert chunk_pages("e", [(1, ""), (2, "  \n\n ")], tokenizer, max_tokens=MAX_TOKENS) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (255, 30), (100, 100), (100, -1)])
def test_bad_options_are_refused(tokenizer, size: int, overlap: int) -> None:
    with pytest.raises(ChunkingError):
        chunk_pages(
            "x",
            [(1, "some text")],
            tokenizer,
            chunk_size=size,
            chunk_overlap=overlap,
            max_tokens=MAX_TOKENS,
        )


def test_slides_and_sheets_never_share_a_chunk(tokenizer) -> None:
    pages = [
        (1, "Quarterly results"),
        (2, "Revenue grew in every region, led by the north. " * 12),
        (3, "Thanks"),
    ]
    apart = chunk_pages(
        "s", pages, tokenizer, chunk_size=60, chunk_overlap=10, max_tokens=MAX_TOKENS,
        pages_apart=True,
    )  # fmt: skip
    assert all(chunk.page == chunk.page_end for chunk in apart)
    assert [c.text for c in apart if c.page in (1, 3)] == ["Quarterly results", "Thanks"]
    full = PAGE_SEPARATOR.join(text for _, text in pages)
    assert all(full[c.char_start : c.char_end] == c.text for c in apart)
    together = chunk_pages(
        "s", pages, tokenizer, chunk_size=60, chunk_overlap=10, max_tokens=MAX_TOKENS
    )
    assert together[0].page_end == 2  # a PDF's short page joins the next
