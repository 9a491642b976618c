"""Terms for lexical search: one Unicode-aware analyzer for documents and queries alike.

- Latin, Greek, Cyrillic and other spaced scripts: words, case-folded, accents folded, stop
  words dropped and stemmed with Snowball (PyStemmer), so `Crises` and `crisis` meet.
- Han, Hiragana, Katakana and Hangul (and Thai, Lao, Khmer and Myanmar, which are not written
  with spaces either): overlapping character bigrams over each run, and the character itself
  for a run of one. Bigrams need no dictionary and match any phrase copied from a document;
  the model's WordPiece vocabulary turns much of this text into `[UNK]`.

Changing anything here changes what the stored term artifacts mean: bump ANALYZER_VERSION.
"""

import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import regex
import Stemmer

ANALYZER_VERSION = "2"
STEMMER_LANGUAGE = "english"

_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}ー"
# A word is letters, marks and digits of the spaced scripts only: `Javaプログラミング` is the
# word `java` followed by a run of kana.
_WORD_CHAR = rf"(?:(?![{_UNSPACED}])[\p{{L}}\p{{M}}\p{{N}}])"
_TOKENS = regex.compile(rf"(?P<run>[{_UNSPACED}]+)|(?P<word>{_WORD_CHAR}+(?:['’]{_WORD_CHAR}+)*)")
# Lucene's English stop set: function words that match nearly every chunk and carry no topic.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "  # noqa: SIM905
    "then there these they this to was will with".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> "Stemmer.Stemmer":
    return Stemmer.Stemmer(STEMMER_LANGUAGE)


def _fold(word: str) -> str:
    folded = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).replace("’", "'")


def _bigrams(run: str) -> Iterable[str]:
    if len(run) == 1:
        return (run,)
    return (run[i : i + 2] for i in range(len(run) - 1))


def analyze(text: str) -> list[str]:
    """The terms of a text, in order, with repeats."""
    terms: list[str] = []
    words: list[str] = []
    for match in _TOKENS.finditer(unicodedata.normalize("NFKC", text)):
        run = match.group("run")
        if run is not None:
            if words:
                terms.extend(_stem(words))
                words = []
            terms.extend(_bigrams(run))
            continue
        word = _fold(match.group("word"))
        if word.endswith("'s"):
            word = word[:-2]
        if word and word not in STOP_WORDS:
            words.append(word)
    if words:
        terms.extend(_stem(words))
    return terms


def _stem(words: list[str]) -> list[str]:
    stemmed: list[str] = _stemmer().stemWords(words)
    return stemmed


def term_counts(text: str) -> Counter[str]:
    return Counter(analyze(text))


def unspaced_share(text: str) -> float:
    """The share of a text's letters in scripts the English embedding model cannot read well."""
    letters = regex.findall(r"[\p{L}\p{N}]", text)
    if not letters:
        return 0.0
    unspaced = regex.findall(rf"[{_UNSPACED}]", text)
    return len(unspaced) / len(letters)
