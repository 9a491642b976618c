"""Latency benchmark: one small document through the API until it is searchable.

A stack on a temporary instance and free ports (bench/harness/stack.py): Chroma,
`rag-pipeline worker`, `dagster-daemon` and `rag-api`, with the real model; measuring starts once
every worker process is warm. Each document is a small text (two short paragraphs) carrying a
nonsense word of its own, and it is searchable when `GET /search?q=<word>&k=1` (the default,
hybrid mode) returns it as the top hit; its latency runs from the moment its `POST /documents`
was sent.

- solo: uploads one at a time, each once the one before is searchable and a pause of 3-8 s
  later (random, so uploads fall at every phase of the sensor daemon's 5 s loop); p50 and p95.
  Goals: p50 <= 5 s, p95 <= 8 s.
- burst: 10 uploads spread evenly over 2 s while the searches watch. Goal: all <= 10 s.

The floor, in the same run: the same kind of document extracted, chunked, embedded, upserted
into a Chroma collection on the same server and found by a search (the word's embedding,
filtered to chunks containing it) in this one warm process, with no Dagster: one at a time for
the solo figure, the burst's ten together for the burst. Ratios are floor / pipeline.

Searches are polled cheaply: a lexical query (no model) every 0.2 s per waiting document, and
the real hybrid query once the lexical one finds it; the document becomes searchable in both
at the same moment (its vectors are written before its terms are published).

- cli (entry point 4): `rag-pipeline add` and `dagster asset materialize --partition` for a
  note, from the first command to searchable; first with the warm worker alive (the command
  hands its step to it), then with the worker stopped (the command loads the model itself),
  p50 of `--cli` each. Same floor as solo.

`--launcher default` measures the execution model before warm workers: Dagster's
DefaultRunLauncher spawns a process per run, and no worker runs. Each launcher's figures are
kept under its own key in bench/results/latency.json, and latency.png draws every launcher
measured.

    python -m bench latency [--solo 10] [--burst 10] [--cli 3] [--launcher warm|default]
"""

import os
import random
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness.command import arguments
from bench.harness.processes import stop_on_sigterm
from bench.harness.results import provenance, read_json, write_json
from bench.harness.stack import LAUNCHERS, Stack
from bench.latency.floor import floor
from bench.latency.summary import print_table, summarise, summarise_cli, write_chart
from bench.latency.uploads import SOLO_PAUSE_SECONDS, breakdown, burst, by_cli, solo
from rag_pipeline.execution.executor import WORKER_SEEN_WITHIN_SECONDS


def main(argv: list[str] | None = None) -> None:
    parser = arguments("latency", __doc__)
    parser.add_argument("--solo", type=int, default=10, help="solo uploads")
    parser.add_argument("--burst", type=int, default=10, help="uploads in the burst")
    parser.add_argument("--burst-seconds", type=float, default=2.0, help="the burst's spread")
    parser.add_argument("--cli", type=int, default=3, help="notes through the CLI, each way")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="warm")
    parser.add_argument("--seed", type=int, default=None, help="for the nonsense words")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    rng = random.Random(args.seed)
    measured = provenance()

    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        Stack(Path(tmp), launcher=args.launcher) as stack,
    ):
        stack.start("chroma")
        os.environ.update(stack.env)
        print("floor: one warm process, no Dagster ...", flush=True)
        base = floor(stack.chroma_url, rng, args.burst)
        what = "rag-pipeline worker, " if args.launcher == "warm" else ""
        print(f"pipeline: starting {what}dagster-daemon and rag-api ...", flush=True)
        stack.start_all()
        with httpx.Client(base_url=stack.api_url, timeout=60) as http:
            print(f"pipeline: {args.solo} solo uploads", flush=True)
            solos = solo(http, args.solo, rng)
            time.sleep(SOLO_PAUSE_SECONDS[1])
            print(f"pipeline: a burst of {args.burst} in {args.burst_seconds} s", flush=True)
            bursts = burst(http, args.burst, args.burst_seconds, rng)
            # Before the CLI part stops the worker, whose CPU the report counts.
            report = summarise(measured, base, breakdown(solos), breakdown(bursts), stack)
            cli: dict[str, list[float]] = {}
            if args.cli and args.launcher == "warm":
                print(f"pipeline: {args.cli} through the CLI, warm worker alive", flush=True)
                cli["warm_worker"] = by_cli(http, stack.env, args.cli, rng)
                stack.stop("worker")
                time.sleep(WORKER_SEEN_WITHIN_SECONDS + 1)
                print(f"pipeline: {args.cli} through the CLI, no worker", flush=True)
                cli["in_process"] = by_cli(http, stack.env, args.cli, rng)
        if cli:
            report["cli"] = summarise_cli(cli, base)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["settings"] = {"solo": args.solo, "burst": args.burst, "within": args.burst_seconds}
    print_table(report)
    # Each launcher's figures are kept when the other is measured.
    results = {**read_json("latency"), args.launcher: report}
    print(f"written to {write_json('latency', results)} and {write_chart(results)}")
