"""/search latency per mode at 10k chunks, against a floor measured in the same run.

    python -m bench search [--chunks 10000] [--queries 300] [--work DIR]

The SQuAD articles are ingested through the pipeline with the real model (as `make eval` does;
`--work` reuses an eval folder), then copied under new document ids, vectors and all, until the
index holds `--chunks` chunks. The real API (`rag-api`, one process) answers SQuAD
questions over HTTP, one client at a time and then four at once, in each mode.

The floor is what a hand-rolled script pays for a dense query with no API at all: embed the
query and ask Chroma for the top k, in this process. Ratio = floor / API, at p50 and p99.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.harness.clients import concurrent_latencies, summary
from bench.harness.command import arguments
from bench.harness.corpus import squad_questions
from bench.harness.pipeline import ingest_retrieval_set
from bench.harness.processes import wait_until_warm
from bench.harness.results import write_json
from bench.harness.retrieval import copy_document, dense_floor
from bench.harness.stack import Stack

GOAL_P99_MS = 100.0
K = 5


def grow(target: int) -> int:
    """Copy the ingested documents under new ids until the catalog holds `target` chunks."""
    from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
    from rag_pipeline.core.storage.catalog import read_chunks
    from rag_pipeline.core.storage.data_dir import DocumentStore

    store = DocumentStore(os.environ["RAG_DATA_DIR"])
    index = VectorIndex(connect(os.environ["RAG_CHROMA_URL"]), os.environ["RAG_CHROMA_COLLECTION"])
    originals = sorted(p.stem for p in (store.catalog_dir / "lexical").glob("*.parquet"))
    originals = [d for d in originals if "-copy" not in d]
    total = index.count()
    copy = 0
    while total < target:
        copy += 1
        for doc in originals:
            if total >= target:
                break
            new = f"{doc}-copy{copy}"
            if store.artifact_path("lexical", new).exists():
                total += len(read_chunks(store, new))
                continue
            total += copy_document(store, index, doc, new)[1]
    return index.count()


def hammer(url: str, queries: list[str], mode: str, clients: int) -> list[float]:
    def requests_of(n: int) -> Iterator[Callable[[httpx.Client], None]]:
        for q in queries[n::clients]:
            yield lambda http, q=q: _search(http, url, q, mode)

    return concurrent_latencies(clients, requests_of)


def _search(http: httpx.Client, url: str, q: str, mode: str) -> None:
    response = http.get(url, params={"q": q, "k": K, "mode": mode})
    if response.status_code != 200 or not response.json()["results"]:
        raise RuntimeError(f"/search answered {response.status_code}: {response.text}")


def main(argv: list[str] | None = None) -> None:
    parser = arguments("search", __doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, help="reuse (and keep) ingested data in this folder")
    args = parser.parse_args(argv)
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="rag-search-")) if temporary else args.work.resolve()
    queries = squad_questions(args.queries)
    results: dict[str, Any] = {}
    try:
        with Stack(work, RAG_CHROMA_COLLECTION="documents") as stack:
            stack.start("chroma")
            os.environ.update(stack.env)
            ingest_retrieval_set(work)
            chunks = grow(args.chunks)
            print(f"index holds {chunks} chunks", flush=True)
            results["floor"] = summary(dense_floor(queries, K))
            stack.start("api")
            wait_until_warm(stack.api_url)
            search_url = f"{stack.api_url}/search"
            for mode in ("dense", "lexical", "hybrid"):
                hammer(search_url, queries[:20], mode, 1)  # warm: model, lexical index, caches
                results[mode] = summary(hammer(search_url, queries, mode, 1))
                results[f"{mode}_4_clients"] = summary(hammer(search_url, queries, mode, 4))
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)

    report = {
        "chunks": chunks,
        "k": K,
        "queries": len(queries),
        "cpus": os.cpu_count(),
        "goal_p99_ms": GOAL_P99_MS,
        "latency": results,
        "ratio_floor_over_api": {
            mode: {
                "p50": round(results["floor"]["p50_ms"] / results[mode]["p50_ms"], 3),
                "p99": round(results["floor"]["p99_ms"] / results[mode]["p99_ms"], 3),
            }
            for mode in ("dense", "lexical", "hybrid")
        },
        "hybrid_p99_within_goal": results["hybrid"]["p99_ms"] <= GOAL_P99_MS,
    }
    written = write_json("search", report)
    print(f"/search latency at {chunks} chunks, k={K}, {len(queries)} SQuAD questions")
    print(f"{'':<18}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in results.items():
        print(f"{name:<18}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['max_ms']:>10.1f}")
    print(f"ratios floor/API: {report['ratio_floor_over_api']}")
    print(f"hybrid p99 within {GOAL_P99_MS:.0f} ms: {report['hybrid_p99_within_goal']}")
    print(f"written to {written}")


if __name__ == "__main__":
    main()
