"""Retrieval quality: every search mode scored on the labelled SQuAD questions, plus CJK phrases
and CJK questions.

    python -m bench eval [--model NAME] [--cjk-only] [--work DIR] [--fresh]     # `make eval`

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

CJK questions (bench/eval/cjk_questions.tsv, `questions`): natural questions in each language,
paraphrased away from the passage that answers them, asked in every mode; doc hit@5 is the share
whose top 5 chunks include one of the question's document. Their documents are ingested too.

`--model` names the embedding model the documents are ingested and queried with (all-MiniLM-L6-v2
by default); `--cjk-only` ingests only the CJK documents and skips the SQuAD questions, which
makes the index smaller than in a full run (the report says which it was).

Writes bench/results/retrieval.json and retrieval.png (retrieval-<model>.* for another model)
unless --cjk-only, and the model's entry of bench/results/cjk_questions.json; prints the tables.
"""

import os
import shutil
import tempfile
from pathlib import Path

from bench.eval import questions
from bench.eval.rankings import Searcher
from bench.eval.scoring import evaluate, phrase_table, question_table
from bench.eval.summary import write, write_cjk
from bench.harness.command import arguments
from bench.harness.pipeline import ingest_retrieval_set
from bench.harness.stack import MODEL, Stack


def main(argv: list[str] | None = None) -> None:
    parser = arguments("eval", __doc__)
    parser.add_argument("--work", type=Path, help="keep the ingested data here and reuse it")
    parser.add_argument("--fresh", action="store_true", help="ingest again even if --work has it")
    parser.add_argument("--model", default=MODEL, help="the embedding model (default: %(default)s)")
    parser.add_argument(
        "--cjk-only", action="store_true", help="only the CJK documents, phrases and questions"
    )
    args = parser.parse_args(argv)
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="rag-eval-")) if temporary else args.work.resolve()
    if args.fresh and work.exists():
        shutil.rmtree(work)
    asked = questions.load()
    try:
        with Stack(work, model=args.model, RAG_CHROMA_COLLECTION="documents") as stack:
            stack.start("chroma")
            os.environ.update(stack.env)
            ingest_retrieval_set(work, questions.documents(asked), squad=not args.cjk_only)
            searcher = Searcher(args.model)
            report = None if args.cjk_only else evaluate(searcher)
            phrases = report["cjk_phrases"] if report else phrase_table(searcher)[1]
            cjk = {
                "index": "CJK documents only" if args.cjk_only else "SQuAD and CJK documents",
                "chunks": len(searcher.chunks),
                "cjk_phrases": phrases,
                **question_table(searcher, asked),
            }
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    if report:
        write({"model": args.model, **report})
    write_cjk(args.model, cjk)
