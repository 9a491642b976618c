"""Figures, table and chart of the ingest benchmark, from what bench/ingest/measure.py
measured.

Run timelines come from each run's event log: queued (enqueued -> starting), launch (starting ->
the worker's run start: process start and code load), setup (run start -> step start), work
(step start -> run end). A run embeds its documents in one call that also loads the model:
that call's seconds less the floor's time for as many chunks is the run's embedding excess,
model load plus any slowdown (two runs or other work sharing the cores).
"""

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.results import pyplot, save_chart


def _rate(count: float, seconds: float, per: float = 1.0) -> float:
    return round(count / seconds * per, 2) if seconds > 0 else math.nan


def _span(events: dict[str, float], start: str, end: str) -> float | None:
    if start in events and end in events:
        return round(events[end] - events[start], 2)
    return None


def _percentiles(values: list[float]) -> dict[str, float]:
    known = np.array(values or [math.nan])
    return {
        "p50": round(float(np.percentile(known, 50)), 2),
        "p95": round(float(np.percentile(known, 95)), 2),
        "max": round(float(known.max()), 2),
    }


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 2) if known else None


def summarise(
    paths: list[Path], base: dict[str, Any], piped: dict[str, Any], environment: dict[str, Any]
) -> dict[str, Any]:
    docs = piped["documents"]
    count = len(paths)
    ends = [d["terminal"] for d in docs if d["terminal"] is not None]
    wall = max(ends) - piped["first_landed"] if ends else math.nan
    indexed = [d for d in docs if d["status"] == "indexed"]
    chunks = sum(d["chunks"] for d in indexed)
    latencies = {d["file"]: round(d["run_start"] - d["landed"], 2) for d in docs if d["run_start"]}
    queued_at = {r["run_id"]: r["events"].get("RUN_ENQUEUED", math.nan) for r in piped["runs"]}
    # The sensor's share of the pickup: landed -> the run it requested was enqueued.
    sensor = [queued_at[d["run_id"]] - d["landed"] for d in docs if d["run_id"] in queued_at]
    embed_rate = base["chunks"] / base["embed_seconds"] if base["embed_seconds"] else math.nan

    runs = []
    for run in piped["runs"]:
        events = run["events"]
        batch = run["embed_batch_seconds"]
        excess = batch - run["chunks"] / embed_rate if batch is not None else None
        runs.append(
            {
                "run_id": run["run_id"],
                "status": run["status"],
                "documents": run["documents"],
                "chunks": run["chunks"],
                "queued_seconds": _span(events, "RUN_ENQUEUED", "RUN_STARTING"),
                "launch_seconds": _span(events, "RUN_STARTING", "RUN_START"),
                "setup_seconds": _span(events, "RUN_START", "STEP_START"),
                "work_seconds": _span(events, "STEP_START", "RUN_END"),
                "run_seconds": _span(events, "RUN_STARTING", "RUN_END"),
                "embed_batch_seconds": batch,
                "embed_excess_seconds": round(excess, 2) if excess is not None else None,
                "started_after_first_landed": round(
                    events.get("RUN_STARTING", math.nan) - piped["first_landed"], 2
                ),
                "ended_after_first_landed": round(
                    events.get("RUN_END", math.nan) - piped["first_landed"], 2
                ),
            }
        )
    busy = sum(r["run_seconds"] or 0.0 for r in runs)
    floor = {
        "model_load_seconds": round(base["model_load_seconds"], 2),
        "seconds": round(base["seconds"], 2),
        "extract_chunk_seconds": round(base["extract_chunk_seconds"], 2),
        "embed_seconds": round(base["embed_seconds"], 2),
        "chunks": base["chunks"],
        "documents_per_minute": _rate(count, base["seconds"], 60),
        "chunks_per_second": _rate(base["chunks"], base["seconds"]),
        "failures": base["failures"],
    }
    pipeline = {
        "wall_seconds": round(wall, 2),
        "chunks": chunks,
        "indexed": len(indexed),
        "documents_per_minute": _rate(count, wall, 60),
        "chunks_per_second": _rate(chunks, wall),
        "failures": [f"{d['file']}: {d['error']}" for d in docs if d["status"] == "failed"],
        "rejected": piped["rejected"],
        # Run-seconds per wall second: how many runs were at work on average.
        "mean_concurrent_runs": round(busy / wall, 2) if wall > 0 else None,
        "cpu_seconds": piped["cpu_seconds"],
        # Share of all cores' time over the wall that the measured processes used.
        "cpu_utilisation": round(
            sum(piped["cpu_seconds"].values()) / (wall * (environment["cpu_count"] or 1)), 3
        ),
    }
    return {
        "documents": count,
        "sample": [p.name for p in paths],
        "floor": floor,
        "pipeline": pipeline,
        "ratio": {
            "chunks_per_second": round(
                pipeline["chunks_per_second"] / floor["chunks_per_second"], 3
            ),
            "documents_per_minute": round(
                pipeline["documents_per_minute"] / floor["documents_per_minute"], 3
            ),
        },
        "pickup_latency_seconds": {
            **_percentiles(list(latencies.values())),
            "landed_to_enqueued": _percentiles(sensor),
            "per_document": latencies,
        },
        "runs": {
            "count": len(runs),
            "documents_per_run": [r["documents"] for r in runs],
            "mean_launch_seconds": _mean([r["launch_seconds"] for r in runs]),
            "mean_setup_seconds": _mean([r["setup_seconds"] for r in runs]),
            "mean_embed_excess_seconds": _mean([r["embed_excess_seconds"] for r in runs]),
            "details": runs,
        },
        "environment": environment,
    }


def print_table(report: dict[str, Any]) -> None:
    floor, pipe, ratio = report["floor"], report["pipeline"], report["ratio"]
    env, runs, lat = report["environment"], report["runs"], report["pickup_latency_seconds"]
    print()
    print(
        f"ingest benchmark: {report['documents']} documents, {env['model']}, "
        f"{env['cpu_count']} CPUs, {env['max_concurrent_runs']} concurrent runs, "
        f"up to {env['RAG_MAX_DOCS_PER_RUN']} documents per run"
    )
    print(f"{'':<22}{'floor':>10}{'pipeline':>12}{'ratio':>8}")
    print(
        f"{'documents/min':<22}{floor['documents_per_minute']:>10.2f}"
        f"{pipe['documents_per_minute']:>12.2f}{ratio['documents_per_minute']:>8.2f}"
    )
    print(
        f"{'chunks/s':<22}{floor['chunks_per_second']:>10.2f}"
        f"{pipe['chunks_per_second']:>12.2f}{ratio['chunks_per_second']:>8.2f}"
    )
    print(f"{'seconds':<22}{floor['seconds']:>10.1f}{pipe['wall_seconds']:>12.1f}")
    print(f"{'chunks':<22}{floor['chunks']:>10}{pipe['chunks']:>12}")
    print(
        f"floor: model load {floor['model_load_seconds']:.1f} s (once, not in the floor), "
        f"extract+chunk {floor['extract_chunk_seconds']:.1f} s, "
        f"embed {floor['embed_seconds']:.1f} s"
    )
    sensor = lat["landed_to_enqueued"]
    print(
        f"pickup latency (landed -> run start): p50 {lat['p50']:.1f} s, p95 {lat['p95']:.1f} s, "
        f"max {lat['max']:.1f} s; of which landed -> run enqueued by the sensor: "
        f"p50 {sensor['p50']:.1f} s, p95 {sensor['p95']:.1f} s"
    )
    print(
        f"runs: {runs['count']}, documents per run {runs['documents_per_run']}, "
        f"mean concurrent {pipe['mean_concurrent_runs']}; per run: launch "
        f"{runs['mean_launch_seconds']} s, setup {runs['mean_setup_seconds']} s, "
        f"embedding excess over floor ~{runs['mean_embed_excess_seconds']} s"
    )
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in pipe["cpu_seconds"].items())
    print(f"pipeline CPU seconds: {cpu}; utilisation {pipe['cpu_utilisation']:.0%} of all cores")
    print(f"{'run':<10}{'docs':>5}{'chunks':>7}{'queued':>8}{'launch':>8}{'setup':>7}", end="")
    print(f"{'work':>8}{'embed':>8}{'excess':>7}{'start@':>8}{'end@':>8}  status")
    for r in runs["details"]:
        cells = [
            r[k]
            for k in (
                "queued_seconds",
                "launch_seconds",
                "setup_seconds",
                "work_seconds",
                "embed_batch_seconds",
                "embed_excess_seconds",
                "started_after_first_landed",
                "ended_after_first_landed",
            )
        ]
        widths = (8, 8, 7, 8, 8, 7, 8, 8)
        shown = "".join(_cell(v, w) for v, w in zip(cells, widths, strict=True))
        print(f"{r['run_id'][:8]:<10}{r['documents']:>5}{r['chunks']:>7}{shown}  {r['status']}")
    failures = floor["failures"], pipe["failures"], pipe["rejected"]
    print(
        f"failures: floor {len(failures[0])}, pipeline {len(failures[1])}, "
        f"rejected {len(failures[2])}"
    )
    for line in [*failures[0].items(), *failures[1], *failures[2]]:
        print(f"  {line}")


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.1f}" if value is not None and not math.isnan(value) else " " * width


def write_chart(report: dict[str, Any]) -> str:
    plt = pyplot()

    floor, pipe = report["floor"], report["pipeline"]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.8))
    bars = left.bar(["floor", "pipeline"], [floor["chunks_per_second"], pipe["chunks_per_second"]])
    for bar, per_min in zip(
        bars, [floor["documents_per_minute"], pipe["documents_per_minute"]], strict=True
    ):
        left.annotate(
            f"{per_min:.1f} docs/min",
            (bar.get_x() + bar.get_width() / 2, 0),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            color="white",
        )
    left.set_ylabel("chunks / s")
    left.set_title(f"throughput (ratio {report['ratio']['chunks_per_second']:.2f})")

    latencies = sorted(report["pickup_latency_seconds"]["per_document"].values())
    if latencies:
        share = np.arange(0, len(latencies) + 1) / len(latencies)
        middle.step([latencies[0], *latencies], share, where="post")
        middle.set_xlim(left=0)
    middle.set_xlabel("seconds from file landed to run start")
    middle.set_ylabel("share of documents")
    middle.set_title("pickup latency (CDF)")
    middle.grid(alpha=0.3)

    details = report["runs"]["details"]
    for row, run in enumerate(details):
        start = run["started_after_first_landed"]
        phases = [
            (start - (run["queued_seconds"] or 0.0), run["queued_seconds"], "lightgrey"),
            (start, (run["launch_seconds"] or 0.0) + (run["setup_seconds"] or 0.0), "tab:orange"),
            (
                run["ended_after_first_landed"] - (run["work_seconds"] or 0.0),
                run["work_seconds"],
                "tab:blue",
            ),
        ]
        for begin, length, colour in phases:
            if length is not None and not math.isnan(begin):
                right.barh(row, length, left=begin, color=colour)
    right.set_yticks(range(len(details)), [f"{r['documents']} docs" for r in details])
    right.set_xlim(left=0)
    right.invert_yaxis()
    right.set_xlabel("seconds since the first file landed")
    right.set_title("runs: queued (grey), launch+setup (orange), work (blue)")
    fig.tight_layout()
    return save_chart(fig, "ingest", dpi=110)
