"""Benchmarks of the pipeline against plain-Python floors measured in the same run.

    python -m bench                     # every benchmark in turn (make bench)
    python -m bench stages [--docs rel/path ...]
    python -m bench extract [--repeat 5]
    python -m bench formats [--limit N] [--repeat 3]
    python -m bench ingest [--limit N]
    python -m bench latency [--solo 10] [--burst 10] [--launcher warm|default]
    python -m bench small [--limit N]
    python -m bench upload [--clients 16] [--per-client 20]
    python -m bench search [--chunks 10000]
    python -m bench filtered [--chunks 100000] [--collections 10] [--tiny]
    python -m bench embed [--chunks 256] [--batch 32]
    python -m bench status [--sizes 1000 10000 100000]
    python -m bench eval [--work DIR] [--fresh]
    python -m bench report [--check]

`stages` times each stage of one range run (bench/results/stages.json); `extract` times
the extraction sandbox against in-process extraction and how soon a time bound bites
(bench/results/extract.json); `formats` times each Office, web and image format and OCR per
page against the bare library call, and scores phrases found and OCR readability
(bench/results/formats.json and formats.png); `ingest` drops a corpus
sample into the landing zone of a real daemon and measures throughput and pickup latency
(bench/results/ingest.json and ingest.png); `latency` times one small document through the
API until search finds it, alone and in a burst of ten, and `--launcher default` measures
spawn-per-run for comparison (bench/results/latency.json and latency.png); `small` drops the
11,429 Vaswani/NPL abstracts into the landing zone at once (bench/results/small.json and
small.png); `upload` measures upload latency of 1 MB PDFs from
16 concurrent clients against the API (bench/results/upload.json); `search` measures /search
latency per mode at 10k chunks (bench/results/search.json); `filtered` measures filtered and
unfiltered /search per mode at 100k chunks over 10 collections (bench/results/filtered.json);
`status` measures status reads and
the progress stream at 1k to 100k documents (bench/results/status.json and status.png); `embed`
measures chunks per second of each built-in model in process and through the endpoint client
against the library called directly (bench/results/embed.json).
`eval` (`make eval`, not part of `make bench`) scores retrieval quality on the SQuAD questions
(bench/results/retrieval.json). `report` writes docs/benchmarks.md from bench/results/*.json
(`--check` only says whether it is current).
Arguments after the name go to that benchmark.
"""

import importlib
import subprocess
import sys

BENCHMARKS = (
    "stages",
    "extract",
    "formats",
    "ingest",
    "latency",
    "small",
    "upload",
    "search",
    "filtered",
    "status",
    "embed",
)
# Run on their own: `eval` (`make eval`) scores retrieval quality rather than timing anything,
# and `report` writes docs/benchmarks.md from the results.
EXTRA = ("eval", "report")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args:
        name, rest = args[0], args[1:]
        if name not in (*BENCHMARKS, *EXTRA):
            print(
                f"unknown benchmark {name!r}; choose from: {', '.join(BENCHMARKS)}", file=sys.stderr
            )
            return 2
        module = importlib.import_module(f"bench.{name}")
        module.main(rest)
        return 0
    for name in BENCHMARKS:
        print(f"== bench {name}", flush=True)
        # A process per benchmark: each measures per-process costs such as loading the model,
        # which a model cached by the previous benchmark would hide.
        code = subprocess.call([sys.executable, "-m", "bench", name])
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
