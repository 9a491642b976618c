"""Ingest benchmark: a corpus sample through the real landing zone, against a plain-Python floor.

The floor extracts, chunks and embeds the sample in this one process, with no Dagster, after
loading the model (a per-process cost, reported on its own). The pipeline figure comes from a
real `dagster-daemon` and a warm `rag-pipeline worker` on a temporary instance (see
bench/harness/stack.py): every file is dropped into the landing zone, the sensor turns them into
batched range runs that execute on the worker, and the clock runs from the first file landed
to the last document indexed or failed. Pickup latency is a document's run start minus the time
its file landed. The sample is the 48 SQuAD texts, then the 25 well-formed PDFs, each sorted.

    python -m bench ingest [--limit N]    # writes bench/results/ingest.json and ingest.png
"""

import os
import tempfile
import time
from pathlib import Path

import yaml

from bench.harness.command import arguments
from bench.harness.corpus import CORPUS
from bench.harness.pipeline import floor
from bench.harness.processes import stop_on_sigterm
from bench.harness.results import write_json
from bench.harness.stack import MODEL, Stack
from bench.ingest.measure import pipeline, sample
from bench.ingest.summary import print_table, summarise, write_chart


def main(argv: list[str] | None = None) -> None:
    parser = arguments("ingest", __doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    args = parser.parse_args(argv)
    paths = sample(CORPUS, args.limit)
    if not paths:
        raise SystemExit(f"no corpus documents under {CORPUS} (set RAG_CORPUS_DIR)")
    stop_on_sigterm()
    load_before = os.getloadavg()
    print(f"floor: {len(paths)} documents in this process ...", flush=True)
    base = floor(paths)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, Stack(Path(tmp)) as stack:
        stack.start("chroma")
        os.environ.update(stack.env)
        print("pipeline: starting rag-pipeline worker and dagster-daemon ...", flush=True)
        stack.start_all(api=False)
        print(f"pipeline: dropping {len(paths)} files into the landing zone", flush=True)
        observer = time.process_time()
        piped = pipeline(paths, stack.data, stack.log("daemon"))
        piped["cpu_seconds"] = {
            **stack.cpu_seconds(),
            "benchmark_polling": round(time.process_time() - observer, 2),
        }
        config = yaml.safe_load((stack.home / "dagster.yaml").read_text())
    from rag_pipeline.orchestration.assets import MAX_DOCS_PER_RUN

    environment = {
        "cpu_count": os.cpu_count(),
        "launcher": stack.launcher,
        "RAG_WORKER_CONCURRENCY": stack.env.get("RAG_WORKER_CONCURRENCY", "2"),
        "worker_warm_up": {
            "seconds": stack.worker_warm_seconds,
            "cpu_seconds": stack.worker_warm_cpu,
        },
        "RAG_MAX_DOCS_PER_RUN": MAX_DOCS_PER_RUN,
        "max_concurrent_runs": config["concurrency"]["runs"]["max_concurrent_runs"],
        "model": MODEL,
        "RAG_TORCH_THREADS": os.environ.get("RAG_TORCH_THREADS", "0"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    report = summarise(paths, base, piped, environment)
    written = write_json("ingest", report), write_chart(report)
    print_table(report)
    print(f"written to {' and '.join(written)}")
