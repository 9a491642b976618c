"""Retrieval quality: every search mode scored on the labelled SQuAD questions, plus CJK phrases.

    python -m bench eval [--work DIR] [--fresh]       # `make eval`

The 48 SQuAD v1.1 dev articles and the corpus's Japanese, Korean and Chinese documents are
ingested through the normal pipeline (`rag-pipeline add`, then a range run of `ingest_job` on a
temporary instance, a real Chroma server and the real model). Then, for each of the 2,067
questions (one per paragraph), every mode is scored:

- doc hit@1 and hit@5: a top chunk comes from the question's article;
- answer-in-top-5: a top-5 chunk's text contains one of the crowd answers;
- MRR@10: 1 / the rank of the first chunk that contains an answer (0 past rank 10).

The tuning grid ranks by fusion alone; the reported rows add search()'s last step (chunks that
contain the query verbatim first), which no SQuAD question triggers (the report counts them).

Tuning never sees what it is judged on by itself: the articles are split by name, even
positions in sorted order for tuning and odd ones held out. BM25's k1 and b and the fusion's
dense weight and depth are chosen on the tuning half; the report gives tune, held-out and all.
The shipped constants (lexical.K1, lexical.B, search.DENSE_WEIGHT, search.FUSION_DEPTH) are
what `hybrid` uses in every row; the report says whether tuning agrees with them.

CJK phrases: from each CJK document, seeded random phrases copied out of its chunks (8 characters
of Japanese or Chinese, 3 words of Korean) must come back with a chunk containing them at rank 1.

Writes bench/results/retrieval.json and retrieval.png, and prints the table.
"""

import json
import os
import random
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import regex

from bench.eval.summary import write
from bench.harness.command import arguments
from bench.harness.corpus import CJK_DOCS, SQUAD
from bench.harness.pipeline import ingest_retrieval_set
from bench.harness.stack import MODEL, Stack

PHRASES_PER_DOC = 10
TARGETS = {"answer_top5": 0.95, "mrr10": 0.85, "doc_hit5": 0.99}
MODES = ("dense", "lexical", "hybrid")
POOL = 100
Key = tuple[str, int]


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class Searcher:
    """Candidate lists per mode for every query, computed once; fusion is redone from them."""

    def __init__(self) -> None:
        from rag_pipeline.core.retrieval.lexical import LexicalIndex
        from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
        from rag_pipeline.core.stages.embedders import get_embedder
        from rag_pipeline.core.storage.catalog import Catalog
        from rag_pipeline.core.storage.data_dir import DocumentStore

        store = DocumentStore(os.environ["RAG_DATA_DIR"])
        self.store = store
        self.embedder = get_embedder(MODEL)
        self.index = VectorIndex(
            connect(os.environ["RAG_CHROMA_URL"]), os.environ["RAG_CHROMA_COLLECTION"]
        )
        self.catalog = Catalog(store)
        self.lexicon_for: Callable[..., LexicalIndex] = lambda **kw: LexicalIndex(store, **kw)
        self.lexicon = self.lexicon_for()
        _, rows = self.catalog.query(
            "SELECT document_id, chunk_no, filename, text FROM chunks JOIN documents "
            "USING (document_id)"
        )
        self.chunks = {(d, n): (f, nfkc(t)) for d, n, f, t in rows}
        self.texts = {key: text for key, (_, text) in self.chunks.items()}

    def dense(self, queries: Sequence[str]) -> list[list[tuple[Key, float]]]:
        vectors = [self.embedder.embed_query(query) for query in queries]
        return [
            [((h.document_id, h.chunk_no), h.score) for h in self.index.query(v, POOL)]
            for v in vectors
        ]

    def lexical(self, queries: Sequence[str], **bm25: float) -> list[list[tuple[Key, float]]]:
        lexicon = self.lexicon_for(**bm25) if bm25 else self.lexicon
        return [
            [((h.document_id, h.chunk_no), h.score) for h in lexicon.query(q, POOL)]
            for q in queries
        ]


def hybrid(
    queries: Sequence[str],
    dense: Sequence[Sequence[tuple[Key, float]]],
    lexical: Sequence[Sequence[tuple[Key, float]]],
    weight: float,
    depth: int,
) -> list[list[Key]]:
    from rag_pipeline.core.retrieval.search import fuse, query_dense_weight

    return [
        [key for key, _ in fuse(d[:depth], lx[:depth], query_dense_weight(q, weight))]
        for q, d, lx in zip(queries, dense, lexical, strict=True)
    ]


def phrased(
    queries: Sequence[str], ranked: Sequence[Sequence[Key]], texts: dict[Key, str]
) -> list[list[Key]]:
    """What search() does after ranking in lexical and hybrid modes: verbatim matches first."""
    from rag_pipeline.core.retrieval.search import PHRASE_POOL, phrases_first

    out = []
    for q, keys_ in zip(queries, ranked, strict=True):
        top = phrases_first(q, [(k, 0.0) for k in keys_[:PHRASE_POOL]], texts)
        out.append([k for k, _ in top] + list(keys_[PHRASE_POOL:]))
    return out


def rrf(
    dense: Sequence[Sequence[tuple[Key, float]]],
    lexical: Sequence[Sequence[tuple[Key, float]]],
    k: int = 60,
) -> list[list[Key]]:
    """Reciprocal rank fusion, scored beside our fusion for comparison."""
    ranked = []
    for d, lx in zip(dense, lexical, strict=True):
        scores: dict[Key, float] = {}
        for hits in (d, lx):
            for rank, (key, _) in enumerate(hits, 1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
        ranked.append(sorted(scores, key=lambda key: -scores[key]))
    return ranked


def keys(lists: Sequence[Sequence[tuple[Key, float]]]) -> list[list[Key]]:
    return [[key for key, _ in hits] for hits in lists]


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
            s = score(searcher.chunks, questions, hybrid(texts, dense, lexical, weight, depth))
            grid.append({"dense_weight": weight, "depth": depth, **s})
    top = max(grid, key=lambda g: (g["answer_top5"] + g["mrr10"], -abs(g["dense_weight"] - 0.5)))
    return {"k1": best_bm25[0], "b": best_bm25[1], "best": top, "grid": grid}


def main(argv: list[str] | None = None) -> None:
    parser = arguments("eval", __doc__)
    parser.add_argument("--work", type=Path, help="keep the ingested data here and reuse it")
    parser.add_argument("--fresh", action="store_true", help="ingest again even if --work has it")
    args = parser.parse_args(argv)
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="rag-eval-")) if temporary else args.work.resolve()
    if args.fresh and work.exists():
        shutil.rmtree(work)
    try:
        with Stack(work, RAG_CHROMA_COLLECTION="documents") as stack:
            stack.start("chroma")
            os.environ.update(stack.env)
            ingest_retrieval_set(work)
            report = evaluate()
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    write(report)


def evaluate() -> dict[str, Any]:
    from rag_pipeline.core.retrieval import lexical as lexical_mod
    from rag_pipeline.core.retrieval import search as search_mod
    from rag_pipeline.core.retrieval.search import PHRASE_POOL, squash

    searcher = Searcher()
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
        "hybrid": phrased(texts, hybrid(texts, dense, lexical, weight, depth), searcher.texts),
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

    phrases = cjk_phrases(searcher)
    ptexts = [p["query"] for p in phrases]
    pdense = searcher.dense(ptexts)
    plex = searcher.lexical(ptexts)
    cjk = {
        "dense": phrase_ranks(searcher.chunks, phrases, keys(pdense)),
        "lexical": phrase_ranks(
            searcher.chunks, phrases, phrased(ptexts, keys(plex), searcher.texts)
        ),
        "hybrid": phrase_ranks(
            searcher.chunks,
            phrases,
            phrased(ptexts, hybrid(ptexts, pdense, plex, weight, depth), searcher.texts),
        ),
    }
    for i, p in enumerate(phrases):
        p["rank"] = {mode: ranks[i] for mode, ranks in cjk.items()}
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
        "cjk_phrases": {
            mode: {
                "rank1": sum(r == 1 for r in ranks),
                "total": len(ranks),
                "by_lang": {lang: _rank1(phrases, ranks, lang) for lang in CJK_DOCS},
            }
            for mode, ranks in cjk.items()
        },
        "cjk_phrase_details": phrases,
    }


def _rank1(phrases: Sequence[dict[str, Any]], ranks: Sequence[int | None], lang: str) -> str:
    mine = [r for p, r in zip(phrases, ranks, strict=True) if p["lang"] == lang]
    return f"{sum(r == 1 for r in mine)}/{len(mine)}"
