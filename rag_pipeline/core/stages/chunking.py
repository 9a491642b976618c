"""Token-aware chunking that respects the embedding model's limit and the text's structure.

Tokens are counted with the model's own tokenizer, because the model silently truncates input
past its maximum sequence length. Boundaries fall at paragraphs, then sentences, then words;
each chunk keeps the page it starts on and its character offsets in the document text.
"""

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from tokenizers import Tokenizer

DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 30
# Pieces shorter than this (titles, boilerplate lines) never stand alone as a chunk: on SQuAD,
# title-only chunks reached dense search's top 5 for 44% of questions.
MIN_CHUNK_TOKENS = 24

PAGE_SEPARATOR = "\n\n"

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by space, or right
# after a CJK full stop. Splits happen only on whitespace, so every character stays in a piece.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+|(?<=[。！？])\s*")


@dataclass(frozen=True)
class Chunk:
    document_id: str
    chunk_no: int
    page: int
    page_end: int
    char_start: int
    char_end: int
    tokens: int
    text: str


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    tokens: int
    page: int


class ChunkingError(ValueError):
    pass


class _SpanCounter(Protocol):
    def count(self, start: int, end: int) -> int: ...

    def split(self, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]: ...


@lru_cache(maxsize=4)
def load_tokenizer(tokenizer_path: str) -> Tokenizer:
    tokenizer = Tokenizer.from_file(tokenizer_path)
    # The shipped tokenizer.json pads and truncates to 128; counting needs neither.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class TokenCounter:
    """Counts the model's wordpieces in any span of a text after encoding it once."""

    def __init__(self, tokenizer: Tokenizer, text: str) -> None:
        encoding = tokenizer.encode(text, add_special_tokens=False)
        self.text = text
        self.starts = [start for start, _ in encoding.offsets]
        self.ends = [end for _, end in encoding.offsets]
        self.word_start = [not tok.startswith("##") for tok in encoding.tokens]

    def count(self, start: int, end: int) -> int:
        return bisect.bisect_left(self.starts, end) - bisect.bisect_left(self.starts, start)

    def split(self, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
        """Cut a span into windows of at most max_tokens, preferring cuts before whole words."""
        first = bisect.bisect_left(self.starts, start)
        last = bisect.bisect_left(self.starts, end)
        windows = []
        i = first
        while i < last:
            j = min(i + max_tokens, last)
            if j < last:
                cut = j
                while cut > i + max_tokens // 2 and not self.word_start[cut]:
                    cut -= 1
                j = cut if self.word_start[cut] else j
            windows.append((self.starts[i], self.ends[j - 1]))
            i = j
        return windows


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    for match in pattern.finditer(text, start, end):
        if match.start() > pos:
            spans.append((pos, match.start()))
        pos = match.end()
    if pos < end:
        spans.append((pos, end))
    return [(a, b) for a, b in (_trim(text, a, b) for a, b in spans) if b > a]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pieces(text: str, page: int, base: int, counter: _SpanCounter, limit: int) -> list[_Piece]:
    """Paragraphs that fit; otherwise their sentences; otherwise windows of words."""
    pieces = []
    for p_start, p_end in _spans(_PARAGRAPH_BREAK, text, 0, len(text)):
        tokens = counter.count(p_start, p_end)
        if tokens <= limit:
            pieces.append(_Piece(base + p_start, base + p_end, tokens, page))
            continue
        for s_start, s_end in _spans(_SENTENCE_END, text, p_start, p_end):
            tokens = counter.count(s_start, s_end)
            if tokens <= limit:
                pieces.append(_Piece(base + s_start, base + s_end, tokens, page))
                continue
            for w_start, w_end in counter.split(s_start, s_end, limit):
                pieces.append(
                    _Piece(base + w_start, base + w_end, counter.count(w_start, w_end), page)
                )
    return [piece for piece in pieces if piece.tokens > 0]


def chunk_pages(
    document_id: str,
    pages: Sequence[tuple[int, str]],
    tokenizer: Tokenizer,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    max_tokens: int,
    pages_apart: bool = False,
) -> list[Chunk]:
    """Split a document's pages into chunks of at most chunk_size tokens.

    `pages` are (page number, text) in order; offsets refer to the document text, which is the
    pages joined with PAGE_SEPARATOR. `max_tokens` is the model's limit without special tokens.
    With `pages_apart` no chunk spans two pages, nor overlaps the page before: a slide or a
    sheet is a unit of its own, which a hit must cite alone, even when it is short.
    """
    if not 1 <= chunk_size <= max_tokens:
        raise ChunkingError(f"chunk_size must be between 1 and {max_tokens}, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise ChunkingError(
            f"chunk_overlap must be at least 0 and less than chunk_size ({chunk_size}), "
            f"got {chunk_overlap}"
        )
    full_text = PAGE_SEPARATOR.join(text for _, text in pages)
    counter = TokenCounter(tokenizer, full_text)
    pieces: list[_Piece] = []
    base = 0
    for number, text in pages:
        page_counter = _OffsetCounter(counter, base)
        # Pieces leave room for the overlap, so every chunk can carry it.
        pieces.extend(_pieces(text, number, base, page_counter, chunk_size - chunk_overlap))
        base += len(text) + len(PAGE_SEPARATOR)
    groups = _pack(pieces, counter, chunk_size, chunk_overlap, pages_apart)
    chunks = []
    for number, (start, end, first_piece, last_piece) in enumerate(groups):
        chunks.append(
            Chunk(
                document_id=document_id,
                chunk_no=number,
                page=_page_at(pieces, start, first_piece),
                page_end=last_piece.page,
                char_start=start,
                char_end=end,
                tokens=counter.count(start, end),
                text=full_text[start:end],
            )
        )
    return chunks


def _page_at(pieces: list[_Piece], offset: int, fallback: _Piece) -> int:
    for piece in pieces:
        if piece.end > offset:
            return piece.page
    return fallback.page


def _pack(
    pieces: list[_Piece],
    counter: TokenCounter,
    chunk_size: int,
    chunk_overlap: int,
    pages_apart: bool = False,
) -> list[tuple[int, int, _Piece, _Piece]]:
    groups: list[tuple[int, int, _Piece, _Piece]] = []
    i = 0
    while i < len(pieces):
        start = pieces[i].start
        page = pieces[i].page
        same_page = not pages_apart or (bool(groups) and groups[-1][3].page == page)
        if groups and chunk_overlap and same_page:
            start = _overlap_start(counter, groups[-1][0], groups[-1][1], chunk_overlap)
        budget = chunk_size - counter.count(start, pieces[i].start)
        used = 0
        j = i
        while (
            j < len(pieces)
            and used + pieces[j].tokens <= budget
            and (not pages_apart or pieces[j].page == page)
        ):
            used += pieces[j].tokens
            j += 1
        if j == i:
            # The overlap left no room for the next piece: drop the overlap for this chunk.
            start, j = pieces[i].start, i + 1
        groups.append((start, pieces[j - 1].end, pieces[i], pieces[j - 1]))
        i = j
    if len(groups) > 1 and not (pages_apart and groups[-2][3].page != groups[-1][2].page):
        _, last_end, first_piece, last_piece = groups[-1]
        prev_start, prev_end, _, _ = groups[-2]
        own_tokens = counter.count(prev_end, last_end)
        if own_tokens < MIN_CHUNK_TOKENS:
            # A short tail (a signature, a footer) does not stand alone: it takes as much of
            # the text before it as chunk_size allows, so it is never a chunk of its own.
            start = _overlap_start(counter, prev_start, prev_end, chunk_size - own_tokens)
            groups[-1] = (start, last_end, first_piece, last_piece)
    return groups


def _overlap_start(counter: TokenCounter, start: int, end: int, overlap: int) -> int:
    """Where the last `overlap` tokens of [start, end) begin, moved forward to a word start."""
    first = bisect.bisect_left(counter.starts, start)
    last = bisect.bisect_left(counter.starts, end)
    i = max(first, last - overlap)
    while i < last and not (
        counter.word_start[i] and counter.text[counter.starts[i] - 1 : counter.starts[i]].isspace()
    ):
        i += 1
    return counter.starts[i] if i < last else end


class _OffsetCounter:
    """A page's view of the document-wide TokenCounter: offsets relative to the page."""

    def __init__(self, counter: TokenCounter, base: int) -> None:
        self._counter = counter
        self._base = base

    def count(self, start: int, end: int) -> int:
        return self._counter.count(self._base + start, self._base + end)

    def split(self, start: int, end: int, max_tokens: int) -> list[tuple[int, int]]:
        return [
            (a - self._base, b - self._base)
            for a, b in self._counter.split(self._base + start, self._base + end, max_tokens)
        ]
