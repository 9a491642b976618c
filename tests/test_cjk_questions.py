"""The CJK questions of the retrieval evaluation (bench/eval/cjk_questions.tsv): each answered
by a passage of its document's extracted text, paraphrased rather than copied from it."""

from collections import Counter
from functools import cache

import pytest
from support.env import CORPUS

from bench.eval.questions import LANGUAGES, MAX_OVERLAP, documents, load, normalized, overlap
from rag_pipeline.core.stages.extract import extract

QUESTIONS = load()
MIN_QUESTIONS, MIN_PER_LANGUAGE = 60, 20


@cache
def text_of(document: str) -> str:
    path = CORPUS / document
    extracted = extract(path.read_bytes(), path.name)
    return normalized("\n".join(page.text for page in extracted.pages))


def test_enough_questions_in_each_language_with_unique_ids() -> None:
    assert len(QUESTIONS) >= MIN_QUESTIONS
    per_language = Counter(q["language"] for q in QUESTIONS)
    assert set(per_language) == set(LANGUAGES)
    assert min(per_language.values()) >= MIN_PER_LANGUAGE, per_language
    ids = [q["id"] for q in QUESTIONS]
    assert len(set(ids)) == len(ids)


def test_questions_are_paraphrases() -> None:
    for q in QUESTIONS:
        assert normalized(q["answer"]) not in normalized(q["question"]), q["id"]
        assert q["overlap"] == overlap(q["question"], q["answer"]), q["id"]
        assert q["overlap"] < MAX_OVERLAP, q["id"]


@pytest.mark.parametrize("document", documents(QUESTIONS))
def test_answers_are_passages_of_their_document(document: str) -> None:
    text = text_of(document)
    for q in QUESTIONS:
        if q["document"] == document:
            assert normalized(q["answer"]) in text, q["id"]
