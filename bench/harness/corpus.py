"""The shared corpus (`RAG_CORPUS_DIR`, ../shared/corpus by default) and what the benchmarks
read from it: the SQuAD retrieval set, the CJK documents and PHRASES.tsv."""

import json
import os
from collections.abc import Sequence
from pathlib import Path

from bench.harness.processes import REPO

CORPUS = Path(os.environ.get("RAG_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
SQUAD = CORPUS / "retrieval" / "squad_v1.1_dev"
# Documents in Japanese, Korean and Chinese, ingested with the SQuAD articles: the retrieval
# evaluation asks for phrases of each.
CJK_DOCS = {
    "ja": [
        "markdown/fpb_free-programming-books-ja.md",
        "text/chardet_shift_jis_rashomon.txt",
        "pdf_intl/pdfjs_issue16063.pdf",
    ],
    "ko": [
        "markdown/fpb_free-programming-books-ko.md",
        "text/chardet_euc-kr_korean.txt",
        "pdf_intl/uns_korean-text-with-tables.pdf",
    ],
    "zh": ["markdown/fpb_free-programming-books-zh.md", "pdf_intl/plumber_issue-67-example.pdf"],
}


def path(rel: str) -> Path:
    """A corpus file by its path in the corpus; fails saying where the corpus was looked for."""
    found = CORPUS / rel
    if not found.exists():
        raise SystemExit(f"{rel} is not in the corpus at {CORPUS} (set RAG_CORPUS_DIR)")
    return found


def retrieval_set(extra: Sequence[str] = (), squad: bool = True) -> list[Path]:
    """What the search benchmarks and the retrieval evaluation ingest: the SQuAD articles
    (unless `squad` is false), then the CJK documents, then the `extra` corpus paths not among
    them."""
    articles = sorted((SQUAD / "docs").glob("*.txt")) if squad else []
    if squad and not articles:
        raise SystemExit(f"no SQuAD articles under {SQUAD} (set RAG_CORPUS_DIR)")
    cjk = [rel for rels in CJK_DOCS.values() for rel in rels]
    return [*articles, *(path(rel) for rel in dict.fromkeys([*cjk, *extra]))]


def squad_questions(count: int | None = None) -> list[str]:
    """The SQuAD questions, or `count` of them spread evenly over the set."""
    lines = (SQUAD / "questions.jsonl").read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines if line]
    if count is None:
        return questions
    return questions[:: max(1, len(questions) // count)][:count]


def phrases(*folders: str) -> list[tuple[str, str, str]]:
    """(path, phrase, language) of PHRASES.tsv, one row a file, for the files under `folders`
    (every folder when none is named), sorted by path."""
    rows = {}
    for line in path("PHRASES.tsv").read_text().splitlines()[1:]:
        rel, phrase, language = line.split("\t")
        if not folders or rel.split("/")[0] in folders:
            rows[rel] = (rel, phrase, language)
    return sorted(rows.values())
