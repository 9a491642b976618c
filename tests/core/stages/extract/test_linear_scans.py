"""Nothing a file contains makes its scanning slower than linear, and sniffing and decoding
fail only with an ExtractionError, whatever the bytes.

Linear time is pinned by growth, not by a clock's absolute reading: the same scan on input
`factor` times larger may take at most `factor * 3` times longer (a quadratic scan takes
`factor**2` times, an exponential one far more), so a busy machine cannot fail it. The
property tests' deadline (5 s an example) only catches a scan that never ends.
"""

import contextlib
import re
import time
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_pipeline.core.retrieval.terms import analyze
from rag_pipeline.core.stages.extract import (
    ExtractionError,
    decode_text,
    garbled_share,
    normalize_text,
)
from rag_pipeline.core.stages.extract.admission import sniffed_type
from rag_pipeline.core.stages.extract.formats.web import xhtml_text
from rag_pipeline.core.stages.extract.sniff import looks_like_html, sniff

# Linear scans leave growth near `factor`; this much slack keeps busy-machine noise out.
SLACK = 3


def seconds_per_call(scan: Callable[[str], object], text: str) -> float:
    """The fastest of three batches of calls, each batch at least 20 ms (one call at least)."""
    best = float("inf")
    for _ in range(3):
        calls, started = 0, time.perf_counter()
        while True:
            scan(text)
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= 0.02:
                break
        best = min(best, elapsed / calls)
    return best


def assert_linear(scan: Callable[[str], object], make: Callable[[int], str], n: int, factor: int):
    small, large = seconds_per_call(scan, make(n)), seconds_per_call(scan, make(factor * n))
    assert large / small < factor * SLACK, (
        f"{factor}x the input took {large / small:.0f}x the time "
        f"({small * 1000:.2f} ms -> {large * 1000:.2f} ms)"
    )


def test_html_sniffing_is_linear_in_a_run_of_comments() -> None:
    # `<!---->` 24 times and then `x` took the old pattern 1.6 s, doubling with each 7 bytes:
    # from 10 comments to 20 it grew ~1000x. Kept that small so that the old code fails
    # this test in seconds instead of hanging it.
    assert_linear(looks_like_html, lambda n: "<!---->" * n + "x", n=10, factor=2)
    # And at sizes where linear growth shows, for each way a comment run can end.
    for tail in ("x", "<html>", "<!-- never closed", "<!doctype"):
        assert_linear(looks_like_html, lambda n, t=tail: "<!---->" * n + t, n=500, factor=8)


def test_trailing_space_cleanup_is_linear_in_a_run_of_spaces() -> None:
    # A run of spaces that no line end follows: the old pattern tried it from every space
    # (a 40 KB text file took 17 s).
    assert_linear(normalize_text, lambda n: "word" + " " * n + "x", n=2000, factor=8)
    assert_linear(normalize_text, lambda n: ("a \t" * n + "\n") * 4, n=2000, factor=8)


@pytest.mark.parametrize(
    ("name", "scan", "make"),
    [
        # Every other pattern the audit found applied to document content, on the input
        # that would make each backtrack if it could.
        ("decode, non-UTF-8", lambda t: decode_text(t.encode("latin-1")), lambda n: "\xe9 " * n),
        ("garbled, glyph names", garbled_share, lambda n: "/g1" * n + "x"),
        ("garbled, cid digits", garbled_share, lambda n: "(cid:" + "1" * n),
        ("garbled, mojibake", garbled_share, lambda n: "\u00c3" * n),
        ("normalize, newlines", normalize_text, lambda n: "\r" * n + "\r\n" * n),
        ("web, blank lines", lambda t: xhtml_text(t.encode()), lambda n: "<p>\n" + " " * n + "x"),
        ("terms, apostrophes", analyze, lambda n: "a'" * n),
        ("terms, mixed scripts", analyze, lambda n: "aプ" * n),
    ],
)
def test_other_content_scans_are_linear(
    name: str, scan: Callable[[str], object], make: Callable[[int], str]
) -> None:
    assert_linear(scan, make, n=4000, factor=8)


# The old HTML pattern with each comment ended by its first `-->` (as browsers end it), the
# meaning the scanner keeps; `(?:(?!-->).)*` cannot run past a `-->`, so it cannot blow up.
_REFERENCE_HTML = re.compile(
    r"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--(?:(?!-->).)*-->\s*)*<(?:!doctype\s+html|html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_PIECES = st.sampled_from(
    ["<!--", "-->", "--", "-", ">", "<", " ", "\n", "\t", "\xa0", "\x85", "<?xml", "<?XML v?>",
     "<html", "<HTML>", "<!doctype", "<!DOCTYPE html>", "html", "x", "é"]
)  # fmt: skip


@given(st.lists(_HTML_PIECES, max_size=12).map("".join))
def test_html_sniffing_means_what_the_pattern_meant(head: str) -> None:
    assert looks_like_html(head) == bool(_REFERENCE_HTML.match(head))


def _old_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("\r\n?|[\x0b\x0c\u2028\u2029]", "\n", text)
    text = re.sub("[\x00-\x08\x0e-\x1f\x7f]", "", text)
    return re.sub(r"[^\S\n]+(?=\n|\Z)", "", text)


@given(st.text(st.sampled_from(" \t\n\r\x0b\x0c\xa0\u2028\u3000\x1c\x85ab"), max_size=40))
def test_trailing_space_cleanup_strips_what_the_pattern_stripped(text: str) -> None:
    assert normalize_text(text) == _old_normalize(text)


_BYTE_PIECES = st.sampled_from(
    [b"<!--", b"-->", b"<html>", b"<!doctype html>", b"<?xml ?>", b"{\\rtf1 ", b"%PDF-1.7",
     b"%%EOF", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff",
     b"\x00", b" ", b"\n", b"\r\n", b"text", b"\xc3\xa9", b"\xe9", b"\x82\xa0", b"\x1b"]
)  # fmt: skip
_CONTENT = st.one_of(st.binary(max_size=600), st.lists(_BYTE_PIECES, max_size=40).map(b"".join))
_NAMES = st.sampled_from(["a.txt", "a.md", "a.pdf", "a.html", "a", "a.docx"])
_FAST = settings(deadline=5000, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(_CONTENT, _NAMES)
def test_sniffing_any_bytes_tells_a_type_or_refuses_them(data: bytes, name: str) -> None:
    for sniffer in (sniff, sniffed_type):
        with contextlib.suppress(ExtractionError):
            sniffer(data, name)


@_FAST
@given(_CONTENT)
def test_decoding_any_bytes_gives_text_or_refuses_them(data: bytes) -> None:
    try:
        text, _ = decode_text(data)
    except ExtractionError:
        return
    assert 0.0 <= garbled_share(text) <= 1.0
    assert "\r" not in normalize_text(text)
