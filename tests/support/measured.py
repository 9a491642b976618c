"""Peak memory of the extraction children, as the kernel counts it.

An extraction child is a child of the sandbox's fork server, not of the test, so the test's
own `getrusage(RUSAGE_CHILDREN)` never sees it, and sampling /proc could miss the last
growth before a child dies. So the work runs in a fresh process (`python -m
support.measured JOB`) that stops its fork server at the end: `ForkServer._stop` waits for
it, and the kernel has by then folded the peak resident set of every child the fork server
reaped (and of each child's own children, Tesseract included) into the fork server's, and
that into this process's RUSAGE_CHILDREN. Its `ru_maxrss` is then the largest peak resident
set of any extraction child, whatever became of the child.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.env import BIN, REPO


def measured(job: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `job` in a fresh process; its outcome, with `peak_rss_mb` of the extraction
    children."""
    done = subprocess.run(
        [str(BIN / "python"), "-m", "support.measured", json.dumps(job)],
        cwd=Path(__file__).parent.parent,
        # As pytest's `pythonpath` has it: the tests' support and the repository (bench).
        env={**os.environ, "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


def _extract(job: dict[str, Any]) -> dict[str, Any]:
    from rag_pipeline.core.stages.extract import (
        ExtractionError,
        ExtractionLimits,
        OcrOptions,
        extract_document,
    )

    data = Path(job["path"]).read_bytes()
    try:
        result = extract_document(
            data,
            job["filename"],
            timeout_s=job.get("timeout_s", 60),
            ocr=OcrOptions(tuple(job.get("ocr", ["eng"]))),
            limits=ExtractionLimits(**job.get("limits", {})),
        )
    except ExtractionError as err:
        return {"code": err.code, "message": err.message}
    return {"code": "ok", "text": result.text[:2000], "pages": result.page_count}


def _materialize(job: dict[str, Any]) -> dict[str, Any]:
    from dagster import DagsterInstance

    from support.runs import materialize

    with DagsterInstance.get() as instance:
        result = materialize(instance, job["keys"])
    return {"success": result.success}


def _main() -> None:
    import multiprocessing.forkserver
    import resource

    job = json.loads(sys.argv[1])
    outcome = _extract(job) if job["kind"] == "extract" else _materialize(job)
    multiprocessing.forkserver._forkserver._stop()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({**outcome, "peak_rss_mb": round(peak_kb / 1024, 1)}))


if __name__ == "__main__":
    _main()
