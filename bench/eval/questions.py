"""The CJK questions: natural questions in Japanese, Korean and Chinese about the corpus's CJK
documents, paraphrased so they share few characters with the passage that answers them
(bench/eval/cjk_questions.tsv), and how each is scored: doc hit@5, a top-5 chunk from its
document.

Each row: id, language (ja, ko, zh), question, document (its corpus path), answer (a passage
copied from the document's extracted text, compared after NFKC with whitespace collapsed) and
overlap: the share of the question's CJK character bigrams that the answer also has (`overlap`),
kept under `MAX_OVERLAP`. Only documents with a text layer are asked about: OCR output varies
with Tesseract's version, and a question must stay answerable by its passage.
"""

import csv
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regex

FILE = Path(__file__).with_name("cjk_questions.tsv")
COLUMNS = ("id", "language", "question", "document", "answer", "overlap")
LANGUAGES = ("ja", "ko", "zh")
MAX_OVERLAP = 0.25
_CJK_RUN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ー]+")


def normalized(text: str) -> str:
    """NFKC with every run of whitespace one space: how passages are compared with text."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def bigrams(text: str) -> set[str]:
    """The CJK character bigrams of `text`, within runs of CJK characters."""
    return {
        run[i : i + 2] for run in _CJK_RUN.findall(normalized(text)) for i in range(len(run) - 1)
    }


def overlap(question: str, answer: str) -> float:
    """The share of the question's CJK bigrams that the answer passage has too."""
    mine = bigrams(question)
    return round(len(mine & bigrams(answer)) / len(mine), 3) if mine else 0.0


def load(path: Path = FILE) -> list[dict[str, Any]]:
    """The questions, in file order, overlap as a float."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        row["overlap"] = float(row["overlap"])
    return rows


def documents(questions: Sequence[dict[str, Any]]) -> list[str]:
    """The corpus paths the questions ask about, in first-asked order."""
    return list(dict.fromkeys(q["document"] for q in questions))


def doc_hits(
    questions: Sequence[dict[str, Any]], ranked_files: Sequence[Sequence[str]]
) -> list[bool]:
    """Per question, whether one of its top 5 chunks (given by file name) is its document's."""
    return [
        Path(q["document"]).name in files[:5]
        for q, files in zip(questions, ranked_files, strict=True)
    ]


def summary(questions: Sequence[dict[str, Any]], hits: Sequence[bool]) -> dict[str, Any]:
    """doc hit@5 over all the questions and per language."""
    by_lang = {}
    for lang in LANGUAGES:
        mine = [h for q, h in zip(questions, hits, strict=True) if q["language"] == lang]
        by_lang[lang] = round(sum(mine) / len(mine), 4) if mine else None
    return {
        "doc_hit5": round(sum(hits) / max(len(hits), 1), 4),
        "hits": sum(hits),
        "total": len(hits),
        "by_lang": by_lang,
    }
