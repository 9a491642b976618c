"""The retrieval evaluation's scores: each mode's doc hits, answer-in-top-5 and MRR@10 on the
SQuAD questions (tune half, held-out half, all), the tuning grid, and the CJK phrases' ranks."""

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regex

from bench.eval.questions import doc_hits, summary
from bench.eval.rankings import Key, Searcher, hybrid, keys, nfkc, phrased, rrf
from bench.harness.corpus import CJK_DOCS, SQUAD

PHRASES_PER_DOC = 10
TARGETS = {"answer_top5": 0.95, "mrr10": 0.85, "doc_hit5": 0.99}


def score(
    chunks: dict[Key, tuple[str, str]], questions: Sequence[dict[str, Any]], ranked: list[list[Key]]
) -> dict[str, float]:
    doc1 = doc5 = ans5 = rr = 0.0
    for q, keys_ in zip(questions, ranked, strict=True):
        top = [chunks[k] for k in keys_[:10] if k in chunks]
        want = Path(q["doc"]).name
        answers = [nfkc(a) for a in q["answers"]]
        files = [f for f, _ in top]
        doc1 += bool(files[:1] and files[0] == want)
        doc5 += want in files[:5]
        first = next(
            (i for i, (_, text) in enumerate(top) if any(a in text for a in answers)), None
        )
        ans5 += first is not None and first < 5
        rr += 1.0 / (first + 1) if first is not None else 0.0
    n = max(len(questions), 1)
    return {
        "doc_hit1": round(doc1 / n, 4),
        "doc_hit5": round(doc5 / n, 4),
        "answer_top5": round(ans5 / n, 4),
        "mrr10": round(rr / n, 4),
    }


def cjk_phrases(searcher: Searcher) -> list[dict[str, Any]]:
    """Seeded phrases copied from each CJK document's chunks."""
    rng = random.Random(7)
    phrases = []
    for lang, rels in CJK_DOCS.items():
        for rel in rels:
            name = Path(rel).name
            texts = [t for (f, t) in searcher.chunks.values() if f == name]
            if not texts:
                raise SystemExit(f"{rel} has no chunks: was it ingested?")
            pool = []
            for text in texts:
                if lang == "ko":
                    words = text.split()
                    pool += [
                        " ".join(words[i : i + 3])
                        for i in range(len(words) - 2)
                        if all(regex.search(r"\p{Hangul}", w) for w in words[i : i + 3])
                    ]
                else:
                    for run in regex.findall(r"[\p{Han}\p{Hiragana}\p{Katakana}ー]{8,}", text):
                        pool += [run[i : i + 8] for i in range(0, len(run) - 7, 4)]
            for phrase in rng.sample(sorted(set(pool)), min(PHRASES_PER_DOC, len(set(pool)))):
                phrases.append({"lang": lang, "document": name, "query": phrase})
    return phrases


def phrase_ranks(
    chunks: dict[Key, tuple[str, str]], phrases: Sequence[dict[str, Any]], ranked: list[list[Key]]
) -> list[int | None]:
    out: list[int | None] = []
    for p, keys_ in zip(phrases, ranked, strict=True):
        # A phrase copied from a PDF comes with spaces where the text has line breaks.
        query = " ".join(p["query"].split())
        out.append(
            next(
                (
                    i + 1
                    for i, k in enumerate(keys_[:50])
                    if query in " ".join(chunks[k][1].split())
                ),
                None,
            )
        )
    return out


def tune(
    searcher: Searcher, questions: Sequence[dict[str, Any]], dense: list[Any]
) -> dict[str, Any]:
    texts = [q["question"] for q in questions]
    best_bm25, best = (1.2, 0.75), -1.0
    for k1 in (0.9, 1.2, 1.5):
        for b in (0.5, 0.75, 0.9):
            s = score(searcher.chunks, questions, keys(searcher.lexical(texts, k1=k1, b=b)))
            if s["answer_top5"] + s["mrr10"] > best:
                best, best_bm25 = s["answer_top5"] + s["mrr10"], (k1, b)
    lexical = searcher.lexical(texts, k1=best_bm25[0], b=best_bm25[1])
    grid = []
    for depth in (20, 50, 100):
        for step in range(0, 21):
            weight = step / 20
            s = score(
                searcher.chunks,
                questions,
                hybrid(texts, dense, lexical, weight, depth, searcher.embedder.multilingual),
            )
            grid.append({"dense_weight": weight, "depth": depth, **s})
    top = max(grid, key=lambda g: (g["answer_top5"] + g["mrr10"], -abs(g["dense_weight"] - 0.5)))
    return {"k1": best_bm25[0], "b": best_bm25[1], "best": top, "grid": grid}


def evaluate(searcher: Searcher) -> dict[str, Any]:
    """The SQuAD questions in every mode, the tuning grid, and the CJK phrases."""
    from rag_pipeline.core.retrieval import lexical as lexical_mod
    from rag_pipeline.core.retrieval import search as search_mod
    from rag_pipeline.core.retrieval.search import PHRASE_POOL, squash

    questions = [json.loads(line) for line in (SQUAD / "questions.jsonl").open()]
    articles = sorted({q["doc"] for q in questions})
    tune_docs = set(articles[0::2])
    tune_idx = [i for i, q in enumerate(questions) if q["doc"] in tune_docs]
    held_idx = [i for i, q in enumerate(questions) if q["doc"] not in tune_docs]
    texts = [q["question"] for q in questions]

    started = time.perf_counter()
    dense = searcher.dense(texts)
    lexical = searcher.lexical(texts)
    print(f"candidates for {len(texts)} questions in {time.perf_counter() - started:.0f} s")
    tuned = tune(searcher, [questions[i] for i in tune_idx], [dense[i] for i in tune_idx])
    weight, depth = search_mod.DENSE_WEIGHT, search_mod.FUSION_DEPTH
    runs = {
        "dense": keys(dense),
        "lexical": phrased(texts, keys(lexical), searcher.texts),
        "hybrid": phrased(
            texts,
            hybrid(texts, dense, lexical, weight, depth, searcher.embedder.multilingual),
            searcher.texts,
        ),
        "rrf (comparison)": rrf([d[:depth] for d in dense], [lx[:depth] for lx in lexical]),
    }
    subsets = {"all": range(len(questions)), "tune": tune_idx, "held_out": held_idx}
    table = {
        mode: {
            name: score(searcher.chunks, [questions[i] for i in idx], [ranked[i] for i in idx])
            for name, idx in subsets.items()
        }
        for mode, ranked in runs.items()
    }

    phrases, cjk = phrase_table(searcher)
    return {
        "questions": len(questions),
        "split": {
            "rule": "articles sorted by file name; even positions tune, odd positions held out",
            "tune_articles": len(tune_docs),
            "tune_questions": len(tune_idx),
            "held_out_questions": len(held_idx),
        },
        "chunks": len(searcher.chunks),
        "questions_found_verbatim_in_a_chunk": sum(
            any(squash(q) in squash(searcher.texts[k]) for k in ranked[:PHRASE_POOL])
            for q, ranked in zip(texts, runs["hybrid"], strict=True)
        ),
        "shipped": {
            "k1": lexical_mod.K1,
            "b": lexical_mod.B,
            "dense_weight": weight,
            "depth": depth,
        },
        "tuned_on_tune_half": {k: v for k, v in tuned.items() if k != "grid"},
        "tuning_grid": tuned["grid"],
        "targets_hybrid_all": TARGETS,
        "results": table,
        "cjk_phrases": cjk,
        "cjk_phrase_details": phrases,
    }


def ranked_by_mode(searcher: Searcher, queries: Sequence[str]) -> dict[str, list[list[Key]]]:
    """Each query's ranked chunks in dense, lexical and hybrid mode, as search() ranks them."""
    from rag_pipeline.core.retrieval.search import DENSE_WEIGHT, FUSION_DEPTH

    dense = searcher.dense(queries)
    lexical = searcher.lexical(queries)
    fused = hybrid(
        queries, dense, lexical, DENSE_WEIGHT, FUSION_DEPTH, searcher.embedder.multilingual
    )
    return {
        "dense": keys(dense),
        "lexical": phrased(queries, keys(lexical), searcher.texts),
        "hybrid": phrased(queries, fused, searcher.texts),
    }


def phrase_table(searcher: Searcher) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The CJK phrases, each with its rank per mode, and per mode how many came first."""
    phrases = cjk_phrases(searcher)
    runs = ranked_by_mode(searcher, [p["query"] for p in phrases])
    cjk = {mode: phrase_ranks(searcher.chunks, phrases, ranked) for mode, ranked in runs.items()}
    for i, p in enumerate(phrases):
        p["rank"] = {mode: ranks[i] for mode, ranks in cjk.items()}
    return phrases, {
        mode: {
            "rank1": sum(r == 1 for r in ranks),
            "total": len(ranks),
            "by_lang": {lang: _rank1(phrases, ranks, lang) for lang in CJK_DOCS},
        }
        for mode, ranks in cjk.items()
    }


def question_table(searcher: Searcher, questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The CJK questions' doc hit@5 per mode, and each question's top-5 files per mode."""
    runs = ranked_by_mode(searcher, [q["question"] for q in questions])
    top5 = {
        mode: [[searcher.chunks[k][0] for k in keys_[:5]] for keys_ in ranked]
        for mode, ranked in runs.items()
    }
    hits = {mode: doc_hits(questions, files) for mode, files in top5.items()}
    return {
        "results": {mode: summary(questions, h) for mode, h in hits.items()},
        "details": [
            {
                "id": q["id"],
                "document": q["document"],
                "hit5": {mode: h[i] for mode, h in hits.items()},
                "top5": {mode: files[i] for mode, files in top5.items()},
            }
            for i, q in enumerate(questions)
        ],
    }


def _rank1(phrases: Sequence[dict[str, Any]], ranks: Sequence[int | None], lang: str) -> str:
    mine = [r for p, r in zip(phrases, ranks, strict=True) if p["lang"] == lang]
    return f"{sum(r == 1 for r in mine)}/{len(mine)}"
