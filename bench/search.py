"""/search latency per mode at 10k chunks, against a floor measured in the same run.

    python -m bench search [--chunks 10000] [--queries 300] [--work DIR]

The SQuAD articles are ingested through the pipeline with the real model (as `make eval` does;
`--work` reuses an eval folder), then copied under new document ids, vectors and all, until the
index holds `--chunks` chunks. The real API (`python -m rag_api`, one process) answers SQuAD
questions over HTTP, one client at a time and then four at once, in each mode.

The floor is what a hand-rolled script pays for a dense query with no API at all: embed the
query and ask Chroma for the top k, in this process. Ratio = floor / API, at p50 and p99.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.eval import SQUAD, ingest
from bench.stages import (
    MODEL,
    REPO,
    RESULTS,
    free_port,
    start_chroma,
    stop,
    wait_for_http,
    wait_until_warm,
)
from bench.upload import concurrent_latencies, summary

GOAL_P99_MS = 100.0
K = 5


def copy_document(store: Any, index: Any, doc: str, new: str) -> tuple[str, int]:
    """Copy an ingested document under a new id: its catalog rows, its vectors (into `index`)
    and its published terms; returns its file name and number of chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rag_pipeline.core.retrieval.vector_index import VectorRecord
    from rag_pipeline.core.storage.catalog import read_chunks, read_embeddings

    for kind in ("documents", "chunks"):
        table = pq.read_table(store.artifact_path(kind, doc))
        column = pa.array([new] * len(table), pa.string())
        table = table.set_column(table.schema.get_field_index("document_id"), "document_id", column)
        pq.write_table(table, store.artifact_path(kind, new))
    chunks = {c.chunk_no: c for c in read_chunks(store, doc)}
    chunk_nos, vectors, _ = read_embeddings(store, doc)
    records = [
        VectorRecord(n, chunks[n].page, chunks[n].char_start, chunks[n].char_end) for n in chunk_nos
    ]
    filename = pq.read_table(store.artifact_path("documents", doc))["filename"][0].as_py()
    index.replace_document(new, filename, records, vectors)
    shutil.copy(store.artifact_path("terms", doc), store.artifact_path("lexical", new))
    return filename, len(chunk_nos)


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


def floor(queries: list[str], suffix: str = "", model: str = MODEL) -> list[float]:
    """Milliseconds of a hand-rolled dense query (embed, then ask Chroma), in this process,
    against the index of the collection named by `suffix` (`default`'s when empty)."""
    from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
    from rag_pipeline.core.stages.embedders import get_embedder

    embedder = get_embedder(model)
    embedder.use_threads(1)  # as the API does
    root = VectorIndex(connect(os.environ["RAG_CHROMA_URL"]), os.environ["RAG_CHROMA_COLLECTION"])
    index = root.of(suffix)
    for q in queries[:20]:
        index.query(embedder.embed_query(q), K)
    latencies = []
    for q in queries:
        started = time.perf_counter()
        index.query(embedder.embed_query(q), K)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


@contextmanager
def serving_api() -> Iterator[str]:
    """The real API (`python -m rag_api`, one process) on a free port, for the block; yields
    its base URL."""
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "rag_api"],
        cwd=REPO,
        # No key: the benchmark is the machine's one user.
        env={**os.environ, "RAG_API_PORT": str(port), "RAG_OPEN_ACCESS": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/openapi.json")
        wait_until_warm(base)
        yield base
    finally:
        api.terminate()
        api.wait(timeout=30)


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
    parser = argparse.ArgumentParser(
        prog="python -m bench search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--work", type=Path, help="reuse (and keep) ingested data in this folder")
    args = parser.parse_args(argv)
    temporary = args.work is None
    work = Path(tempfile.mkdtemp(prefix="rag-search-")) if temporary else args.work.resolve()
    (work / "home").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", work / "home" / "dagster.yaml")
    chroma, url = start_chroma(work / "chroma")
    env = {
        "DAGSTER_HOME": str(work / "home"),
        "RAG_DATA_DIR": str(work / "data"),
        "RAG_CHROMA_URL": url,
        "RAG_CHROMA_COLLECTION": "documents",
        "RAG_EMBEDDING_MODEL": MODEL,
    }
    os.environ.update(env)
    questions = [json.loads(line)["question"] for line in (SQUAD / "questions.jsonl").open()]
    queries = questions[:: max(1, len(questions) // args.queries)][: args.queries]
    results: dict[str, Any] = {}
    try:
        wait_for_http(f"{url}/api/v2/heartbeat")
        if not (work / "manifest.json").exists():
            ingest(work)
        chunks = grow(args.chunks)
        print(f"index holds {chunks} chunks", flush=True)
        results["floor"] = summary(floor(queries))
        with serving_api() as base:
            search_url = f"{base}/search"
            for mode in ("dense", "lexical", "hybrid"):
                hammer(search_url, queries[:20], mode, 1)  # warm: model, lexical index, caches
                results[mode] = summary(hammer(search_url, queries, mode, 1))
                results[f"{mode}_4_clients"] = summary(hammer(search_url, queries, mode, 4))
    finally:
        stop(chroma)
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"/search latency at {chunks} chunks, k={K}, {len(queries)} SQuAD questions")
    print(f"{'':<18}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in results.items():
        print(f"{name:<18}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['max_ms']:>10.1f}")
    print(f"ratios floor/API: {report['ratio_floor_over_api']}")
    print(f"hybrid p99 within {GOAL_P99_MS:.0f} ms: {report['hybrid_p99_within_goal']}")


if __name__ == "__main__":
    main()
