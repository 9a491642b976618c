"""What a run leaves in bench/results: its JSON (which docs/benchmarks.md is generated from)
and its chart, each saying when and on what code it was measured."""

import json
import os
import subprocess
import time
from typing import Any

from bench.harness.processes import REPO

RESULTS = REPO / "bench" / "results"
# A change under these makes a figure's commit `+uncommitted`; results written by an earlier
# benchmark of the same `make bench` are not code.
CODE = ("rag_pipeline", "rag_api", "bench", "tests", ":(exclude)bench/results")


def commit() -> str:
    """The commit the code runs at, `+uncommitted` when the code differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", *CODE).strip()
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return f"{head}+uncommitted" if changed else head


def ran_at() -> dict[str, str]:
    """When a part ran and on what code, so a report of several partial runs stays honest."""
    return {"ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit()}


def provenance() -> dict[str, Any]:
    """When and on what code a figure was measured, and what else the machine was doing."""
    return {
        **ran_at(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def read_json(name: str) -> dict[str, Any]:
    """bench/results/<name>.json as it stands, or nothing yet."""
    target = RESULTS / f"{name}.json"
    return json.loads(target.read_text()) if target.exists() else {}


def write_json(name: str, report: dict[str, Any]) -> str:
    """Write bench/results/<name>.json; returns its path relative to the repository."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    target.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    return str(target.relative_to(REPO))


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: charts are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_chart(fig: Any, name: str, dpi: int = 110) -> str:
    """Write bench/results/<name>.png, footed with the commit it was measured at, and close the
    figure; returns its path relative to the repository."""
    fig.text(0.995, 0.005, commit(), ha="right", va="bottom", fontsize=7, color="grey")
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.png"
    fig.savefig(target, dpi=dpi)
    pyplot().close(fig)
    return str(target.relative_to(REPO))
