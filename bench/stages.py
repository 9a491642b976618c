"""Stage benchmark: seconds per stage through Dagster, against a floor measured in the same run.

The floor is the same work (extraction, chunking, embedding) done by calling `core` directly in
one plain Python process, with no Dagster, no Parquet and no index. The pipeline figure comes
from a real range run of `ingest_job` on a temporary instance with a real Chroma server and the
real model. Each stage's ratio is floor seconds / pipeline seconds: 1.0 means no overhead.

    python -m bench stages [--docs rel/path ...]      # `make bench` runs it with the others
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RAG_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
RESULTS = REPO / "bench" / "results"
DEFAULT_DOCS = [
    "pdf/uns_pdf2image-memory-error-test-400p.pdf",
    "pdf/pdfminer_naacl06-shinyama.pdf",
    "text/uns_norwich-city.txt",
]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def floor(paths: list[Path]) -> dict[str, float]:
    from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.extract import extract

    embedder = get_embedder(MODEL)
    embedder.embed_documents(
        ["warm up"]
    )  # model load is a per-run cost in both; keep it out of both
    tokenizer = load_tokenizer(embedder.tokenizer_path)
    seconds = {"document_text": 0.0, "document_chunks": 0.0, "chunk_embeddings": 0.0}
    texts: list[str] = []
    for path in paths:
        started = time.perf_counter()
        extracted = extract(path.read_bytes(), path.name)
        seconds["document_text"] += time.perf_counter() - started
        started = time.perf_counter()
        chunks = chunk_pages(
            path.name,
            [(p.number, p.text) for p in extracted.pages],
            tokenizer,
            max_tokens=embedder.max_tokens,
        )
        seconds["document_chunks"] += time.perf_counter() - started
        texts.extend(c.text for c in chunks)
    # One call over every chunk, as the best plain script would batch it.
    started = time.perf_counter()
    embedder.embed_documents(texts)
    seconds["chunk_embeddings"] = time.perf_counter() - started
    chunks_total = len(texts)
    return {**seconds, "chunks": chunks_total}


def pipeline(paths: list[Path]) -> dict[str, float]:
    """One range run of ingest_job; per-stage seconds are summed from materialization metadata."""
    from dagster import DagsterInstance

    from rag_pipeline.core.documents.reports import document_reports
    from rag_pipeline.core.storage.data_dir import DocumentStore
    from rag_pipeline.definitions import defs

    with DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        ids = []
        for path in paths:
            out = subprocess.run(
                [sys.executable, "-m", "rag_pipeline", "add", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            ids.append(out.stdout.strip())
        job = defs.resolve_job_def("ingest_job")
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": ids[0],
                "dagster/asset_partition_range_end": ids[-1],
            },
        )
        wall = time.perf_counter() - started
        assert result.success
        reports = document_reports(DocumentStore(os.environ["RAG_DATA_DIR"]))
        seconds: dict[str, float] = {"wall": wall, "chunks": 0}
        for report in reports:
            for stage, info in report.stages.items():
                seconds[stage] = seconds.get(stage, 0.0) + float(info.metadata["seconds"])
            seconds["chunks"] += report.chunks or 0
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench stages",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--docs", nargs="+", default=DEFAULT_DOCS)
    args = parser.parse_args(argv)
    paths = [CORPUS / rel for rel in args.docs]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        (work / "home" / "dagster.yaml").write_text(
            (REPO / "dagster_home" / "dagster.yaml").read_text()
        )
        chroma, url = start_chroma(work / "chroma")
        os.environ.update(
            DAGSTER_HOME=str(work / "home"),
            RAG_DATA_DIR=str(work / "data"),
            RAG_CHROMA_URL=url,
            RAG_EMBEDDING_MODEL=MODEL,
        )
        try:
            wait_for_http(f"{url}/api/v2/heartbeat")
            base = floor(paths)
            piped = pipeline(paths)
        finally:
            stop(chroma)

    stages = ["document_text", "document_chunks", "chunk_embeddings"]
    report = {
        "documents": args.docs,
        "chunks": piped["chunks"],
        "floor_seconds": {s: round(base[s], 3) for s in stages},
        "pipeline_seconds": {
            s: round(piped.get(s, 0.0), 3) for s in (*stages, "raw_document", "vector_index")
        },
        "pipeline_wall_seconds": round(piped["wall"], 3),
        "ratio_floor_over_pipeline": {
            s: round(base[s] / piped[s], 3) if piped.get(s) else None for s in stages
        },
        "ratio_total": round(sum(base[s] for s in stages) / piped["wall"], 3),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stages.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'stage':<18}{'floor s':>10}{'pipeline s':>12}{'ratio':>8}")
    for s in stages:
        print(
            f"{s:<18}{base[s]:>10.2f}{piped[s]:>12.2f}{report['ratio_floor_over_pipeline'][s]:>8.2f}"
        )
    print(
        f"{'whole run (wall)':<18}{sum(base[s] for s in stages):>10.2f}"
        f"{piped['wall']:>12.2f}{report['ratio_total']:>8.2f}"
    )
    print(f"chunks: {piped['chunks']}; written to {RESULTS / 'stages.json'}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str) -> None:
    import urllib.request

    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def wait_until_warm(base: str, timeout: float = 300.0) -> None:
    """Until the API says start-up has loaded the model, the lexical index and the facets
    (`GET /health` `warm`): measuring before would share the cores with that loading."""
    import json
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
                warm = json.load(response).get("warm")
        except urllib.error.HTTPError as exc:  # 503 while a store is down: still has a body
            warm = json.load(exc).get("warm")
        if warm:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base} did not warm up in {timeout:.0f} s")
        time.sleep(0.2)


def start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Chroma server on a free loopback port, in its own session so it can be stopped whole."""
    port = free_port()
    chroma = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chroma"),
            "run",
            "--path",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return chroma, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """Stop a process started with start_new_session, and whatever it started, for sure."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_seconds)
    # Children can outlive their leader (run workers, fork servers): the group goes with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


if __name__ == "__main__":
    main()
