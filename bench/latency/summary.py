"""Figures, table and chart of the latency benchmark, from the floor and the uploads' rows
(bench/latency/floor.py, bench/latency/uploads.py)."""

import statistics
from typing import Any

import numpy as np

from bench.harness.results import pyplot, save_chart
from bench.harness.stack import MODEL, Stack

GOALS = {"solo_p50_seconds": 5.0, "solo_p95_seconds": 8.0, "burst_max_seconds": 10.0}
PHASES = ("sensor", "queue", "launch", "setup", "work")


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _phases(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median of each phase over the documents that have it."""
    return {
        phase: _percentile([r[key] for r in rows if r[key] is not None], 50)
        for phase in PHASES
        for key in [f"{phase}_seconds"]
    }


def summarise(
    measured: dict[str, Any],
    base: dict[str, Any],
    solo_rows: list[dict[str, Any]],
    burst_rows: list[dict[str, Any]],
    stack: Stack,
) -> dict[str, Any]:
    """The report of one launcher's run, from each upload's row (uploads.breakdown)."""
    solo_s = [r["seconds"] for r in solo_rows if r["seconds"] is not None]
    burst_s = [r["seconds"] for r in burst_rows if r["seconds"] is not None]
    lost_solo, lost_burst = len(solo_rows) - len(solo_s), len(burst_rows) - len(burst_s)
    p50, p95 = _percentile(solo_s, 50), _percentile(solo_s, 95)
    worst = max(burst_s) if burst_s and not lost_burst else None
    figures = {
        "solo_p50_seconds": p50 if not lost_solo else None,
        "solo_p95_seconds": p95 if not lost_solo else None,
        "burst_max_seconds": worst,
    }
    return {
        **measured,
        "launcher": stack.launcher,
        "model": MODEL,
        "worker_warm_seconds": stack.worker_warm_seconds,
        "floor": base,
        "solo": {
            "uploads": len(solo_rows),
            "not_searchable": lost_solo,
            "p50_seconds": p50,
            "p95_seconds": p95,
            "max_seconds": max(solo_s) if solo_s else None,
            "documents": solo_rows,
            "phase_p50_seconds": _phases(solo_rows),
        },
        "burst": {
            "uploads": len(burst_rows),
            "not_searchable": lost_burst,
            "p50_seconds": _percentile(burst_s, 50),
            "max_seconds": max(burst_s) if burst_s else None,
            "documents": burst_rows,
            "phase_p50_seconds": _phases(burst_rows),
        },
        "ratio_floor_over_pipeline": {
            "solo_p50": round(base["solo_p50_seconds"] / p50, 4) if p50 else None,
            "solo_p95": round(base["solo_p50_seconds"] / p95, 4) if p95 else None,
            "burst_max": round(base["burst_seconds"] / worst, 4) if worst else None,
        },
        "goals": GOALS,
        "goals_met": {
            name: (value := figures[name]) is not None and value <= goal
            for name, goal in GOALS.items()
        },
        "cpu_seconds": stack.cpu_seconds(),
    }


def summarise_cli(cli: dict[str, list[float]], base: dict[str, Any]) -> dict[str, Any]:
    """The notes through the command line, each way, against the floor's solo p50."""
    return {
        how: {
            "seconds": values,
            "p50_seconds": _percentile(values, 50),
            "ratio_floor_over_pipeline": round(
                base["solo_p50_seconds"] / statistics.median(values), 4
            ),
        }
        for how, values in cli.items()
    }


def print_table(report: dict[str, Any]) -> None:
    solo_r, burst_r, base = report["solo"], report["burst"], report["floor"]
    ratio, met = report["ratio_floor_over_pipeline"], report["goals_met"]
    print()
    print(f"latency, launcher {report['launcher']}, {report['cpu_count']} CPUs, {report['model']}")
    print(f"{'':<14}{'floor s':>9}{'pipeline s':>12}{'ratio':>8}{'goal s':>8}  met")
    rows = [
        ("solo p50", base["solo_p50_seconds"], solo_r["p50_seconds"], "solo_p50"),
        ("solo p95", base["solo_p50_seconds"], solo_r["p95_seconds"], "solo_p95"),
        ("burst max", base["burst_seconds"], burst_r["max_seconds"], "burst_max"),
    ]
    for label, floor_s, piped, key in rows:
        goal = report["goals"][f"{key}_seconds"]
        shown = f"{piped:>12.2f}" if piped is not None else f"{'-':>12}"
        print(
            f"{label:<14}{floor_s:>9.3f}{shown}{ratio[key] or 0:>8.3f}{goal:>8.1f}  "
            f"{'yes' if met[f'{key}_seconds'] else 'no'}"
        )
    for part in ("solo", "burst"):
        phases = ", ".join(
            f"{k} {v:.2f}" for k, v in report[part]["phase_p50_seconds"].items() if v is not None
        )
        print(f"{part} p50 per phase (s): {phases}")
    for how, figures in report.get("cli", {}).items():
        print(f"cli, {how}: p50 {figures['p50_seconds']} s ({figures['seconds']})")
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in report["cpu_seconds"].items())
    print(f"CPU seconds: {cpu}; load average before {report['load_average_before']}")


def write_chart(results: dict[str, Any]) -> str:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    colours = {"warm": "tab:blue", "default": "tab:orange"}
    for launcher, report in results.items():
        colour = colours.get(launcher, "tab:grey")
        for axis, part in ((left, "solo"), (right, "burst")):
            docs = report[part]["documents"]
            xs = [n + 1 for n, d in enumerate(docs) if d["seconds"] is not None]
            ys = [d["seconds"] for d in docs if d["seconds"] is not None]
            axis.plot(xs, ys, "o-", color=colour, label=f"{launcher} ({report['commit']})")
        left.axhline(report["solo"]["p50_seconds"] or 0, color=colour, lw=0.8, ls=":")
        # Each launcher's run measured its own floor.
        floor_s = report["floor"]
        left.axhline(floor_s["solo_p50_seconds"], color=colour, lw=0.9, ls="-.")
        right.axhline(
            floor_s["burst_seconds"], color=colour, lw=0.9, ls="-.", label=f"{launcher} floor"
        )
    left.axhline(GOALS["solo_p50_seconds"], color="green", ls="--", label="goal p50")
    left.axhline(GOALS["solo_p95_seconds"], color="red", ls="--", label="goal p95")
    right.axhline(GOALS["burst_max_seconds"], color="red", ls="--", label="goal (every one)")
    left.set_title("solo uploads: seconds to searchable (dotted: p50; dash-dot: floor)")
    right.set_title("a burst: seconds to searchable (dash-dot: floor)")
    left.set_xlabel("upload")
    right.set_xlabel("upload, in the order sent")
    left.set_ylabel("seconds from POST to top hit")
    left.set_yscale("log")
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    return save_chart(fig, "latency", dpi=110)
