"""Status reads at 1,000, 10,000 and 100,000 documents, over HTTP, against an in-process floor.

    python -m bench status [--sizes 1000 10000 100000] [--requests 200]

Each size gets a fresh data dir and Dagster instance holding that many documents: registry rows
(90% indexed with five materialized stages, 5% failed at document_text, 5% queued) written in
bulk, plus a real Dagster partition for each. No document is ingested: ingestion does not change
what a status read costs, only how many rows there are. The real API (`rag-api`, one process)
then answers, one client at a time:
- `GET /documents?limit=100` at offset 0, the middle and the end;
- `GET /documents/{id}` for random ids;
- `GET /documents?status=failed&limit=100`;
- `GET /documents?filter=...&limit=100` at offset 0 and the end, for a filter that admits a
  third of the documents (`{"team": "blue"}`) and one that admits 1 in 25 (`{"year": 2024}`);
- and the progress stream: how long after the projection records a document indexed (what the
  ingestion step does when `vector_index` finishes) its SSE client receives the event.

The floor is the same registry read in this process, with no HTTP and no JSON: what any
service built on this registry pays. Ratio = floor / API at p50.
"""

import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness.command import arguments
from bench.harness.processes import wait_until_warm
from bench.harness.results import commit, pyplot, save_chart, write_json
from bench.harness.stack import Stack

GOALS_P99_MS = {"list": 50.0, "one": 20.0, "failed": 50.0, "filtered": 50.0}
FILTERS = {"third": '{"team": "blue"}', "one_in_25": '{"year": 2024}'}
GOAL_SSE_S = 1.0
STAGES = ("raw_document", "document_text", "document_chunks", "chunk_embeddings", "vector_index")


def populate(data_dir: Path, home: Path, n: int) -> list[str]:
    """n registry rows with their stages, and a Dagster partition for each; returns the ids."""
    from dagster import DagsterInstance

    from rag_pipeline.core.registry.model import documents, stages
    from rag_pipeline.core.storage.data_dir import DocumentStore

    registry = DocumentStore(data_dir).registry
    ids = [f"doc-{i:06d}-{i * 7919 % 1_000_003:012x}" for i in range(n)]
    now = time.time() - n
    rows, stage_rows = [], []
    for i, doc_id in enumerate(ids):
        kind = "failed" if i % 20 == 7 else "queued" if i % 20 == 13 else "indexed"
        at = now + i
        rows.append(
            {
                "id": doc_id,
                "collection": "default",
                "filename": f"{doc_id}.pdf",
                "sha256": f"{i:064x}",
                "media_type": "application/pdf",
                "bytes": 10_000 + i,
                "origin": "landing",
                "source_path": f"/landing/{doc_id}.pdf",
                "registered_at": at,
                "submitted_at": at,
                "status": kind,
                "run_id": f"run-{i // 16:08d}",
                "error_stage": "document_text" if kind == "failed" else None,
                "error_code": "no_text_layer" if kind == "failed" else None,
                "error_message": "no page has a text layer" if kind == "failed" else None,
                "chunks": 12 if kind == "indexed" else None,
                "indexed_at": at + 5 if kind == "indexed" else None,
                "updated_at": at + 5,
                "release_partition": False,
                "metadata": {"team": ("red", "blue", "green")[i % 3], "year": 2000 + i % 25},
            }
        )
        done = {"indexed": 5, "failed": 1, "queued": 0}[kind]
        for n_stage, stage in enumerate(STAGES):
            state = "materialized" if n_stage < done else "pending"
            if kind == "failed" and n_stage == 1:
                state = "failed"
            stage_rows.append(
                {
                    "document_id": doc_id,
                    "stage": stage,
                    "state": state,
                    "at": at + n_stage if state != "pending" else None,
                    "run_id": f"run-{i // 16:08d}",
                    "metadata": {"seconds": 0.1, "path": f"/catalog/{stage}/{doc_id}.parquet"},
                }
            )
    with registry.db.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(documents.insert(), rows[start : start + 5000])
            conn.execute(stages.insert(), stage_rows[start * 5 : (start + 5000) * 5])
    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.get() as instance:
        for start in range(0, n, 10_000):
            instance.add_dynamic_partitions("documents", ids[start : start + 10_000])
    return ids


def elapsed_since(call: Any, times: int) -> list[float]:
    out = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "n": len(ordered),
    }


def measure(stack: Stack, ids: list[str], requests: int) -> dict[str, Any]:
    from rag_pipeline.core.registry import DocumentStatus
    from rag_pipeline.core.retrieval.facets import Facets
    from rag_pipeline.core.retrieval.filters import compile_filter
    from rag_pipeline.core.storage.data_dir import DocumentStore

    registry = DocumentStore(stack.data).registry
    facets = Facets(registry)
    n = len(ids)
    stack.start("api")
    url = stack.api_url
    try:
        wait_until_warm(url)
        out: dict[str, Any] = {"documents": n}
        rng = random.Random(n)
        with httpx.Client(base_url=url, timeout=30) as http:

            def get(path: str) -> None:
                response = http.get(path)
                response.raise_for_status()

            for label, offset in (("start", 0), ("middle", n // 2), ("end", n - 100)):
                path = f"/documents?limit=100&offset={offset}"
                get(path)
                api_ms = elapsed_since(lambda path=path: get(path), requests)
                floor_ms = elapsed_since(
                    lambda offset=offset: registry.reads.page(limit=100, offset=offset), requests
                )
                out[f"list_{label}"] = _with_floor(api_ms, floor_ms)
            picks = [rng.choice(ids) for _ in range(requests)]
            it = iter(picks)
            api_ms = elapsed_since(lambda: get(f"/documents/{next(it)}"), requests)
            it = iter(picks)
            floor_ms = elapsed_since(lambda: registry.reads.get(next(it)), requests)
            out["one"] = _with_floor(api_ms, floor_ms)
            failed = "/documents?status=failed&limit=100"
            api_ms = elapsed_since(lambda: get(failed), requests)
            floor_ms = elapsed_since(
                lambda: registry.reads.page(DocumentStatus.failed, limit=100), requests
            )
            out["failed"] = _with_floor(api_ms, floor_ms)
            for name, text in FILTERS.items():
                where = compile_filter(text)
                assert where is not None
                total = facets.page(["default"], where, None, limit=1, offset=0)[1]
                for label, offset in (("start", 0), ("end", max(0, total - 100))):
                    path = f"/documents?limit=100&offset={offset}&filter={text}"
                    get(path)

                    def floor(offset: int = offset, where: Any = where) -> None:
                        page = facets.page(["default"], where, None, limit=100, offset=offset)
                        registry.reads.documents(page[0])

                    api_ms = elapsed_since(lambda path=path: get(path), requests)
                    floor_ms = elapsed_since(floor, requests)
                    out[f"filtered_{name}_{label}"] = _with_floor(api_ms, floor_ms)
        out["sse_delay"] = sse_delays(url, registry, ids)
        return out
    finally:
        stack.stop("api")


def _with_floor(api_ms: list[float], floor_ms: list[float]) -> dict[str, Any]:
    api, floor = _stats(api_ms), _stats(floor_ms)
    return {**api, "floor": floor, "ratio_p50": round(floor["p50_ms"] / api["p50_ms"], 3)}


def sse_delays(url: str, registry: Any, ids: list[str], samples: int = 10) -> dict[str, Any]:
    """Seconds from the projection recording `vector_index` done to the client's event."""
    queued = [doc_id for doc_id in ids if registry.reads.get(doc_id).status == "queued"][:samples]
    delays = []
    for doc_id in queued:
        received = threading.Event()
        ready = threading.Event()

        def follow(
            doc_id: str = doc_id,
            ready: threading.Event = ready,
            received: threading.Event = received,
        ) -> None:
            with (
                httpx.Client(timeout=30) as http,
                http.stream("GET", f"{url}/documents/{doc_id}/events") as stream,
            ):
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        ready.set()
                        if json.loads(line[5:])["status"] == "indexed":
                            received.set()
                            return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        if not ready.wait(30):
            raise TimeoutError(f"no first event for {doc_id}")
        registry.projection.start([doc_id], "bench-run", STAGES)
        for stage in STAGES:
            registry.projection.stage_done(doc_id, stage, "bench-run", {})
        done = time.perf_counter()
        if not received.wait(30):
            raise TimeoutError(f"no indexed event for {doc_id}")
        delays.append(time.perf_counter() - done)
        thread.join(10)
    return {
        "p50_s": round(statistics.median(delays), 3),
        "max_s": round(max(delays), 3),
        "n": len(delays),
        "poll_seconds": float(os.environ.get("RAG_EVENTS_POLL_SECONDS", "0.5")),
    }


def main(argv: list[str] | None = None) -> None:
    parser = arguments("status", __doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    results = []
    for n in args.sizes:
        with (
            tempfile.TemporaryDirectory(prefix="bench-status-") as tmp,
            Stack(Path(tmp), "hash-384") as stack,
        ):
            started = time.perf_counter()
            ids = populate(stack.data, stack.home, n)
            print(f"{n} documents registered in {time.perf_counter() - started:.1f} s", flush=True)
            result = measure(stack, ids, args.requests)
            results.append(result)
            print(json.dumps(result), flush=True)
    largest = results[-1]
    met = {
        "list_p99": max(largest[f"list_{p}"]["p99_ms"] for p in ("start", "middle", "end"))
        <= GOALS_P99_MS["list"],
        "one_p99": largest["one"]["p99_ms"] <= GOALS_P99_MS["one"],
        "failed_p99": largest["failed"]["p99_ms"] <= GOALS_P99_MS["failed"],
        "filtered_p99": max(
            largest[f"filtered_{f}_{p}"]["p99_ms"] for f in FILTERS for p in ("start", "end")
        )
        <= GOALS_P99_MS["filtered"],
        "sse_delay": largest["sse_delay"]["max_s"] <= GOAL_SSE_S,
    }
    report = {
        "benchmark": "status",
        "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "cores": os.cpu_count(),
        "goals": {"p99_ms": GOALS_P99_MS, "sse_delay_s": GOAL_SSE_S},
        "goals_met": met,
        "sizes": results,
    }
    written = write_json("status", report), _chart(results)
    print(json.dumps({"goals_met": met}))
    print(f"written to {' and '.join(written)}")


def _chart(results: list[dict[str, Any]]) -> str:
    plt = pyplot()

    sizes = [r["documents"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (
        ("list_start", "list, offset 0"),
        ("list_end", "list, last page"),
        ("one", "one document"),
        ("failed", "status=failed"),
        ("filtered_third_end", "filter (a third), last page"),
    ):
        ax.plot(sizes, [r[key]["p99_ms"] for r in results], marker="o", label=f"{label} p99")
    ax.axhline(GOALS_P99_MS["list"], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("documents in the registry")
    ax.set_ylabel("ms per request over HTTP")
    ax.set_title("Status reads by corpus size (2 cores)")
    ax.legend()
    fig.tight_layout()
    return save_chart(fig, "status", dpi=110)
