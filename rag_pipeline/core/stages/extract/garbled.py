"""How much of extracted text is garbage: the verdict that fails a document with unreadable fonts
or an unknown encoding, whatever its format."""

import re
import unicodedata
from functools import lru_cache

# Measured on every readable corpus file: at most 0.06 (sf_GeoTopo: formula glyphs without
# a text mapping); every broken one scores at least 0.70 (pdf_intl/pdfjs_XiaoBiaoSong: GBK
# read as Latin-1; glyph-name, shifted-CID and other mojibake files score 0.98-1.0). 0.3 is
# far from both, so a document with a few bad pages or figures still gets through.
GARBLED_FAIL_SHARE = 0.3

_GLYPH_NAMES = re.compile(
    r"/(?:g|G|cid|glyph|index)\d+(?![A-Za-z])|/uni[0-9A-Fa-f]{4,6}(?![G-Zg-z])|\(cid:\d+\)"
)
# A UTF-8 lead byte followed by a continuation byte, both read as Latin-1 or cp1252.
_UTF8_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_HAN_FAMILY = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "BOPOMOFO"})
# A bad character condemns its whole token only in word-sized tokens: unspaced CJK text
# makes a whole line one token, and one stray character must not condemn the line.
_SPREAD_LIMIT = 32


def garbled_share(text: str) -> float:
    """Share (0..1) of non-whitespace characters that are extraction garbage.

    Garbage is judged per whitespace-separated token, because a broken font spoils whole
    words: glyph names (/g18/g152, /uni4E00, (cid:12)), UTF-8 read as Latin-1 (Ã©, â€™),
    CJK bytes read as Latin-1 (Ä¿ ¹Ø), control/unassigned/U+FFFD characters, tokens
    starting with a combining mark or mixing three scripts (CID codes landing in random
    blocks), and Yi/Vai/Bamum characters (EUC-encoded kana read as UTF-16). Private-use
    characters count individually: icon fonts put single bullets there legitimately.
    """
    total = garbage = 0
    for token in text.split():
        total += len(token)
        garbage += _token_garbage(token)
    return garbage / total if total else 0.0


def _token_garbage(token: str) -> int:
    # One glyph-name-like piece may be a path ("/usr/lib/g1"); broken fonts yield runs.
    if _GLYPH_NAMES.fullmatch(token) or len(_GLYPH_NAMES.findall(token)) > 1:
        return len(token)
    if token.isascii():
        return len(token) if _ASCII_CONTROL.search(token) else 0
    if _UTF8_MOJIBAKE.search(token):
        return len(token)
    if _latin1_read_cjk(token):
        return len(token)
    if unicodedata.category(token[0]) in ("Mn", "Me"):
        return len(token)
    bad = private = 0
    scripts: set[str] = set()
    for ch in token:
        category = unicodedata.category(ch)
        if category == "Co":
            private += 1
        elif category in ("Cc", "Cn", "Cs") or ch == "\ufffd" or _is_stray_block(ch):
            bad += 1
        elif category in ("Lu", "Ll", "Lt", "Lo"):
            scripts.add(_script(ch))
    if len(scripts) >= 3 or (bad and len(token) <= _SPREAD_LIMIT):
        return len(token)
    return bad + private


def _latin1_read_cjk(token: str) -> bool:
    # Two-byte CJK codes read as Latin-1 give runs of high Latin-1 characters, and most of
    # them contain a symbol (Ä¿ ¹Ø £±). Letters-only runs stay innocent so that German
    # "äöüß" passes; a run of one repeated symbol is usually a leader ("···") or "§§".
    return (
        len(set(token)) > 1
        and all("\u0080" <= ch <= "\u00ff" for ch in token)
        and any(not unicodedata.category(ch).startswith("L") for ch in token)
    )


def _is_stray_block(ch: str) -> bool:
    return "\ua000" <= ch <= "\ua4cf" or "\ua500" <= ch <= "\ua63f" or "\ua6a0" <= ch <= "\ua6ff"


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    # NFKC first, so that math italics, fullwidth and letterlike symbols (𝑥, ｂ, ℝ) count
    # as the script they stand for rather than as "MATHEMATICAL" or "FULLWIDTH".
    word = unicodedata.name(unicodedata.normalize("NFKC", ch)[:1] or ch, "?").split(" ", 1)[0]
    return "CJK" if word in _HAN_FAMILY else word
