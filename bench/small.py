"""Small-documents benchmark: the Vaswani/NPL collection, 11,429 abstracts, one file each, dropped
into the landing zone at once, against a plain-Python floor.

The floor extracts, chunks and embeds the same texts in this one process, with no Dagster, as
the ingest benchmark's floor does (the model load is reported apart). The pipeline figure comes from
a stack on a temporary instance (bench/harness/stack.py: Chroma, a warm `rag-pipeline worker`,
`dagster-daemon`; no API): the files are written to a staging folder first, then renamed into
the landing zone one after another (atomic, well under a second for all), and the clock runs
from the first rename. Reported: documents/s over the time to the last document indexed or
failed, the ratio to the floor's documents/s (goal >= 0.5, required >= 0.25), the time to the
first document searchable (its vectors and terms written, as its `vector_index`
materialization time says), and the runs that did the work.

    python -m bench small [--limit N] [--launcher warm|default]
                                        # writes bench/results/small.json and small.png
"""

import gzip
import math
import os
import re
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import corpus
from bench.harness.command import arguments
from bench.harness.pipeline import floor
from bench.harness.processes import stop_on_sigterm, tail
from bench.harness.results import provenance, pyplot, save_chart, write_json
from bench.harness.stack import LAUNCHERS, MODEL, Stack, run_events

COLLECTION = "retrieval/vaswani_npl/doc-text.trec.gz"
GOAL, REQUIRED = 0.5, 0.25
POLL_SECONDS = 5.0
# Give up when no document has reached an end for this long: the pipeline is stuck, not slow.
STALL_SECONDS = 600.0
PROGRESS_POINTS = 200  # of the indexed-over-time curve kept in the JSON, for the chart


def abstracts(limit: int | None) -> list[tuple[str, str]]:
    """(file name, text) per document of the collection, in its order."""
    raw = gzip.decompress(corpus.path(COLLECTION).read_bytes()).decode("utf-8")
    docs = re.findall(r"<DOC>\s*<DOCNO>(\d+)</DOCNO>\s*(.*?)</DOC>", raw, re.S)
    return [(f"npl-{int(no):05d}.txt", text.strip() + "\n") for no, text in docs][:limit]


def write_files(docs: list[tuple[str, str]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for name, text in docs:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def drop(paths: list[Path], landing_dir: Path) -> list[float]:
    """Every file renamed into the landing zone, as fast as renames go; when each landed."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    landed = []
    for path in paths:
        os.rename(path, landing_dir / path.name)
        landed.append(time.time())
    return landed


def _counts(store: Any) -> dict[str, int]:
    from rag_pipeline.core.documents.reports import DocumentStatus

    wanted = (DocumentStatus.indexed, DocumentStatus.failed, DocumentStatus.rejected)
    return {str(s): store.registry.reads.page(s, limit=0)[1] for s in wanted}


def pipeline(paths: list[Path], stack: Stack) -> dict[str, Any]:
    from dagster import DagsterInstance, RunsFilter

    from rag_pipeline.core.documents.reports import document_reports
    from rag_pipeline.core.storage.data_dir import DocumentStore

    store = DocumentStore(stack.env["RAG_DATA_DIR"])
    landed = drop(paths, store.landing_dir)
    done, moved = 0, time.monotonic()
    while done < len(paths):
        time.sleep(POLL_SECONDS)
        counts = _counts(store)
        if sum(counts.values()) > done:
            done, moved = sum(counts.values()), time.monotonic()
            print(f"  {datetime.now():%H:%M:%S} {counts} of {len(paths)}", flush=True)
        elif time.monotonic() - moved > STALL_SECONDS:
            raise TimeoutError(
                f"no document ended for {STALL_SECONDS:.0f} s: {counts} of {len(paths)}\n"
                f"{tail(stack.log('daemon'))}"
            )
    reports = document_reports(store)
    landing_runs = RunsFilter(tags={"rag/source": "landing_zone"})
    with DagsterInstance.get() as instance:
        for _ in range(120):  # the last run ends just after its last document
            if all(r.dagster_run.is_finished for r in instance.get_run_records(landing_runs)):
                break
            time.sleep(1)
        runs: list[dict[str, Any]] = sorted(
            (
                {
                    "run_id": str(record.dagster_run.run_id),
                    "status": record.dagster_run.status.value,
                    "events": run_events(instance, record.dagster_run.run_id),
                }
                for record in instance.get_run_records(landing_runs)
            ),
            key=lambda run: run["events"].get("RUN_ENQUEUED", math.inf),
        )
    first = landed[0]
    indexed = [_ts(r.stages["vector_index"].materialized_at) for r in reports]
    ended = [
        _ts(r.stages[r.error.stage].failed_at) if r.error else at
        for r, at in zip(reports, indexed, strict=True)
    ]
    per_run = Counter(r.stages["raw_document"].run_id for r in reports)
    chunks_per_run: Counter[str] = Counter()
    for r in reports:
        chunks_per_run[r.stages["raw_document"].run_id or ""] += r.chunks or 0
    for run in runs:
        run.update(documents=per_run[run["run_id"]], chunks=chunks_per_run[run["run_id"]])
    return {
        "first_landed": first,
        "drop_seconds": round(landed[-1] - first, 3),
        "indexed_after": sorted(at - first for at in indexed if at is not None),
        "ended_after": sorted(at - first for at in ended if at is not None),
        "statuses": dict(Counter(str(r.status) for r in reports)),
        "chunks": sum(r.chunks or 0 for r in reports if str(r.status) == "indexed"),
        "failures": [
            f"{r.filename}: {r.error.stage} [{r.error.code}] {r.error.message}"
            for r in reports
            if r.error
        ][:50],
        "runs": runs,
    }


def _ts(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def _span(events: dict[str, float], start: str, end: str) -> float | None:
    return events[end] - events[start] if start in events and end in events else None


def _stats(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    return {
        "p50": round(float(np.percentile(known, 50)), 2),
        "p95": round(float(np.percentile(known, 95)), 2),
        "max": round(max(known), 2),
        "mean": round(float(np.mean(known)), 2),
    }


def _timeline(run: dict[str, Any], first: float) -> dict[str, Any]:
    """A run's size and its moments, in seconds since the first file landed."""
    marks = {
        name.lower(): round(at - first, 2)
        for name, at in run["events"].items()
        if name in ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START", "STEP_START", "RUN_END")
    }
    return {
        "documents": run["documents"],
        "chunks": run["chunks"],
        "status": run["status"],
        **marks,
    }


def _curve(after: list[float]) -> list[list[float]]:
    """[seconds, documents] points of the indexed-over-time curve, at most PROGRESS_POINTS."""
    if not after:
        return []
    step = max(1, len(after) // PROGRESS_POINTS)
    points = [[round(after[i], 2), i + 1] for i in range(0, len(after), step)]
    if points[-1][1] != len(after):
        points.append([round(after[-1], 2), len(after)])
    return points


def summarise(
    count: int, base: dict[str, Any], piped: dict[str, Any], stack: Stack
) -> dict[str, Any]:
    ended = piped["ended_after"]
    wall = max(ended) if ended else math.nan
    floor_rate = count / base["seconds"]
    rate = len(piped["indexed_after"]) / wall if wall > 0 else math.nan
    ratio = rate / floor_rate
    runs = piped["runs"]
    run_seconds = [_span(r["events"], "RUN_STARTING", "RUN_END") for r in runs]
    return {
        "documents": count,
        "floor": {
            "model_load_seconds": round(base["model_load_seconds"], 2),
            "seconds": round(base["seconds"], 2),
            "extract_chunk_seconds": round(base["extract_chunk_seconds"], 2),
            "embed_seconds": round(base["embed_seconds"], 2),
            "chunks": base["chunks"],
            "documents_per_second": round(floor_rate, 2),
            "failures": base["failures"],
        },
        "pipeline": {
            "documents_per_second": round(rate, 3),
            "seconds_to_first_searchable": round(piped["indexed_after"][0], 2)
            if piped["indexed_after"]
            else None,
            "seconds_to_all_indexed": round(wall, 2),
            "drop_seconds": piped["drop_seconds"],
            "statuses": piped["statuses"],
            "chunks": piped["chunks"],
            "failures": piped["failures"],
            "cpu_seconds": piped["cpu_seconds"],
            "cpu_utilisation": round(
                sum(piped["cpu_seconds"].values()) / (wall * (os.cpu_count() or 1)), 3
            ),
        },
        "ratio_documents_per_second": round(ratio, 4),
        "goal": GOAL,
        "required": REQUIRED,
        "goal_met": ratio >= GOAL,
        "required_met": ratio >= REQUIRED,
        "runs": {
            "count": len(runs),
            "failed": sum(1 for r in runs if r["status"] != "SUCCESS"),
            "documents_per_run": _stats([r["documents"] for r in runs]),
            "chunks_per_run": _stats([r["chunks"] for r in runs]),
            "queued_seconds": _stats(
                [_span(r["events"], "RUN_ENQUEUED", "RUN_STARTING") for r in runs]
            ),
            "launch_seconds": _stats(
                [_span(r["events"], "RUN_STARTING", "RUN_START") for r in runs]
            ),
            "setup_seconds": _stats([_span(r["events"], "RUN_START", "STEP_START") for r in runs]),
            "work_seconds": _stats([_span(r["events"], "STEP_START", "RUN_END") for r in runs]),
            # Run-seconds per wall second: how many runs were at work on average.
            "mean_concurrent": round(sum(s or 0.0 for s in run_seconds) / wall, 2)
            if wall > 0
            else None,
            "details": [_timeline(run, piped["first_landed"]) for run in runs],
        },
        "progress": _curve(piped["indexed_after"]),
        "environment": {
            "launcher": stack.launcher,
            "worker_warm_seconds": stack.worker_warm_seconds,
            "RAG_WORKER_CONCURRENCY": stack.env.get("RAG_WORKER_CONCURRENCY", "2"),
            "RAG_MAX_DOCS_PER_RUN": stack.env.get("RAG_MAX_DOCS_PER_RUN", "16"),
            "model": MODEL,
        },
    }


def print_table(report: dict[str, Any]) -> None:
    base, pipe, runs = report["floor"], report["pipeline"], report["runs"]
    print()
    print(
        f"small documents: {report['documents']} Vaswani/NPL abstracts, launcher "
        f"{report['environment']['launcher']}, {report['cpu_count']} CPUs"
    )
    print(f"{'':<24}{'floor':>10}{'pipeline':>12}")
    print(
        f"{'documents/s':<24}{base['documents_per_second']:>10.2f}{pipe['documents_per_second']:>12.3f}"
    )
    print(f"{'seconds':<24}{base['seconds']:>10.1f}{pipe['seconds_to_all_indexed']:>12.1f}")
    print(f"{'chunks':<24}{base['chunks']:>10}{pipe['chunks']:>12}")
    print(
        f"ratio {report['ratio_documents_per_second']:.4f} (goal {GOAL}: "
        f"{'met' if report['goal_met'] else 'not met'}; required {REQUIRED}: "
        f"{'met' if report['required_met'] else 'not met'})"
    )
    print(
        f"first document searchable after {pipe['seconds_to_first_searchable']} s; "
        f"all ended after {pipe['seconds_to_all_indexed']} s; statuses {pipe['statuses']}"
    )
    print(
        f"runs: {runs['count']} ({runs['failed']} not successful), documents per run "
        f"p50 {runs['documents_per_run']['p50']}, max {runs['documents_per_run']['max']}; "
        f"mean launch {runs['launch_seconds']['mean']} s, setup {runs['setup_seconds']['mean']} s, "
        f"work {runs['work_seconds']['mean']} s; mean concurrent {runs['mean_concurrent']}"
    )
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in pipe["cpu_seconds"].items())
    print(f"CPU seconds: {cpu}; utilisation {pipe['cpu_utilisation']:.0%} of all cores")
    print(
        f"load average before {report['load_average_before']}, after {report['load_average_after']}"
    )


def write_chart(report: dict[str, Any]) -> str:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    base, pipe = report["floor"], report["pipeline"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.8), width_ratios=(2, 2, 1))
    points = report["progress"]
    if points:
        xs, ys = zip(*points, strict=True)
        left.step(xs, ys, where="post", label="pipeline: documents indexed")
        end = max(xs)
        for share, style, label in (
            (1.0, "-", "floor"),
            (GOAL, "--", "goal"),
            (REQUIRED, ":", "required"),
        ):
            rate = base["documents_per_second"] * share
            reach = min(end, report["documents"] / rate)
            left.plot(
                [0, reach],
                [0, rate * reach],
                "k" + style,
                lw=0.9,
                label=f"{label} ({share:g} x floor)",
            )
    left.set_xlabel("seconds since the first file landed")
    left.set_ylabel("documents")
    left.set_title(f"{report['documents']} abstracts dropped at once")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    details = report["runs"]["details"]
    for row, run in enumerate(details):
        phases = [
            ("run_enqueued", "run_starting", "lightgrey"),
            ("run_starting", "step_start", "tab:orange"),
            ("step_start", "run_end", "tab:blue"),
        ]
        for start, end, colour in phases:
            if start in run and end in run:
                middle.barh(row, run[end] - run[start], left=run[start], color=colour, height=1.0)
    middle.yaxis.set_major_locator(MaxNLocator(integer=True))
    middle.invert_yaxis()
    middle.set_xlim(left=0)
    middle.set_xlabel("seconds since the first file landed")
    middle.set_ylabel("run, in the order queued")
    middle.set_title("runs: queued (grey), launch+setup (orange), work (blue)")
    bars = right.bar(
        ["floor", "pipeline"], [base["documents_per_second"], pipe["documents_per_second"]]
    )
    right.bar_label(bars, fmt="%.2f")
    right.axhline(base["documents_per_second"] * GOAL, color="green", ls="--", label="goal")
    right.axhline(base["documents_per_second"] * REQUIRED, color="red", ls=":", label="required")
    right.set_ylabel("documents / s")
    right.set_title(f"ratio {report['ratio_documents_per_second']:.3f} ({report['commit']})")
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_chart(fig, "small", dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = arguments("small", __doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N abstracts")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="warm")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    docs = abstracts(args.limit)
    measured = provenance()
    with (
        tempfile.TemporaryDirectory(prefix="bench-small-") as tmp,
        Stack(Path(tmp), launcher=args.launcher) as stack,
    ):
        stack.start("chroma")
        paths = write_files(docs, stack.root / "staging")
        print(f"floor: {len(paths)} abstracts in this process ...", flush=True)
        base = floor(paths)
        os.environ.update(stack.env)
        what = "rag-pipeline worker and " if args.launcher == "warm" else ""
        print(f"pipeline: starting {what}dagster-daemon ...", flush=True)
        stack.start_all(api=False)
        print(f"pipeline: dropping {len(paths)} files into the landing zone", flush=True)
        observer = time.process_time()
        piped = pipeline(paths, stack)
        piped["cpu_seconds"] = {
            **stack.cpu_seconds(),
            "benchmark_polling": round(time.process_time() - observer, 2),
        }
        report = {**measured, **summarise(len(paths), base, piped, stack)}
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print_table(report)
    print(f"written to {write_json('small', report)} and {write_chart(report)}")


if __name__ == "__main__":
    main()
