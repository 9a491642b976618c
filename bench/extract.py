"""Extraction benchmark: the sandbox against in-process extraction, and how fast a bound bites.

The floor for each document is `extract` in this process; the sandbox figure is
`extract_document`, which reads the same bytes in a forkserver child (text files up to
`IN_PROCESS_TEXT_BYTES` in-process, as ingestion reads them). Ratio is floor seconds /
sandbox seconds (1.0 means the child costs nothing). For the time bound, a runaway document
(about 10 s of pypdf on one page) is given a 1 s bound, once computing and once stopped with
SIGSTOP: the ratio is the bound / the wall seconds until `extraction_timeout` (processor time
is the bound, so a computing child should stop near 1.0; a stopped one only at the wall-clock
backstop, twice the bound, 0.5).

    python -m bench extract [--repeat 5]      # `make bench` runs it with the others
"""

import os
import signal
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import corpus
from bench.harness.command import arguments
from bench.harness.results import write_json

DOCS = [
    "markdown/haystack_sample.md",
    "text/gutenberg_devils-dictionary_972.txt",
    "text/chardet_shift_jis_rashomon.txt",
    "pdf/sf_minimal-document.pdf",
    "pdf/pdfminer_naacl06-shinyama.pdf",
]
RUNAWAY = "pdf_problem/pdfjs_bug1978317.pdf"
BOUND_S = 1.0


def median_seconds(read: Callable[[bytes, str], object], rel: str, repeat: int) -> float:
    data = corpus.path(rel).read_bytes()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        read(data, Path(rel).name)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def documents(repeat: int) -> dict[str, dict[str, float]]:
    from rag_pipeline.core.stages.extract import extract, extract_document, start_sandbox

    start_sandbox()
    out = {}
    for rel in DOCS:
        floor = median_seconds(extract, rel, repeat)
        sandbox = median_seconds(extract_document, rel, repeat)
        out[rel] = {
            "floor_s": round(floor, 4),
            "sandbox_s": round(sandbox, 4),
            "overhead_ms": round((sandbox - floor) * 1000, 1),
            "ratio": round(floor / sandbox, 3),
        }
        print(f"{rel}: floor {floor * 1000:.1f} ms, sandbox {sandbox * 1000:.1f} ms", flush=True)
    return out


def runaway(stop: bool) -> dict[str, float]:
    """Wall seconds until a runaway document times out at BOUND_S, optionally stopped."""
    from rag_pipeline.core.stages.extract import ExtractionError, extract_document

    data = corpus.path(RUNAWAY).read_bytes()
    before = set(children())
    if stop:
        threading.Thread(target=stop_new_child, args=(before,), daemon=True).start()
    started = time.perf_counter()
    try:
        extract_document(data, "runaway.pdf", timeout_s=BOUND_S)
    except ExtractionError as err:
        assert err.code == "extraction_timeout", err
    else:
        raise AssertionError("the runaway document was read within its bound")
    wall = time.perf_counter() - started
    print(f"runaway ({'stopped' if stop else 'computing'}): {wall:.2f} s", flush=True)
    return {"bound_s": BOUND_S, "wall_s": round(wall, 3), "ratio": round(BOUND_S / wall, 3)}


def children() -> list[int]:
    """Live processes whose parent is a fork server of this process."""
    mine = str(os.getpid())
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
            parent_cmd = Path(f"/proc/{ppid}/cmdline").read_bytes()
            grandparent = Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if grandparent == mine and b"multiprocessing.forkserver" in parent_cmd:
            out.append(int(stat.parent.name))
    return out


def cpu_limit(pid: int) -> str:
    try:
        rows = Path(f"/proc/{pid}/limits").read_text().splitlines()
    except OSError:
        return "unlimited"
    return next(row for row in rows if row.startswith("Max cpu time"))


def stop_new_child(before: set[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = [pid for pid in children() if pid not in before]
        # Only once the child has its document: stopped while the bytes are piped to it,
        # it would hold up `start()` in the parent, before any bound applies.
        if new and "unlimited" not in cpu_limit(new[0]):
            os.kill(new[0], signal.SIGSTOP)
            return
        time.sleep(0.005)


def main(argv: list[str] | None = None) -> None:
    parser = arguments("extract", __doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    report = {
        "documents": documents(args.repeat),
        "runaway_computing": runaway(stop=False),
        "runaway_stopped": runaway(stop=True),
    }
    print(f"written to {write_json('extract', report)}")
