"""The pipeline in this process: documents registered as `rag-pipeline add` does and ingested in
one range run of `ingest_job`, as `make run` would, and the plain-Python floor the benchmarks
measure the pipeline against. Each reads the stack's settings from the environment
(`os.environ.update(stack.env)` first)."""

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness.corpus import retrieval_set
from bench.harness.stack import MODEL


def add(paths: list[Path]) -> list[str]:
    """Register the files as `rag-pipeline add` does; returns their document ids, in order."""
    out = subprocess.run(
        [sys.executable, "-m", "rag_pipeline", "add", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def run_range(ids: list[str]) -> tuple[Any, float]:
    """One range run of ingest_job over the documents, in this process; returns its result
    and its wall seconds."""
    from dagster import DagsterInstance

    from rag_pipeline.definitions import defs

    job = defs.resolve_job_def("ingest_job")
    with DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": ids[0],
                "dagster/asset_partition_range_end": ids[-1],
            },
        )
        return result, time.perf_counter() - started


def ingest_retrieval_set(work: Path, extra: Sequence[str] = (), squad: bool = True) -> None:
    """Ingest the SQuAD articles (unless `squad` is false), the CJK documents and the `extra`
    corpus paths once into the stack on `work`, with the stack's model; a `manifest.json` there
    says it is done, so a kept folder is reused, and refused if it holds another set or model."""
    paths = retrieval_set(extra, squad)
    wanted = {"model": os.environ["RAG_EMBEDDING_MODEL"], "files": [p.name for p in paths]}
    manifest = work / "manifest.json"
    if manifest.exists():
        kept = json.loads(manifest.read_text())
        if {k: kept.get(k) for k in wanted} != wanted:
            raise SystemExit(f"{work} holds another set of documents or model: use --fresh")
        return
    ids = add(paths)
    result, seconds = run_range(ids)
    if not result.success:
        raise SystemExit("ingestion failed; see the run's logs")
    print(f"ingested {len(ids)} documents in {seconds:.0f} s", flush=True)
    manifest.write_text(json.dumps({**wanted, "documents": ids}))


def floor(paths: list[Path], model: str = MODEL) -> dict[str, Any]:
    """The documents extracted, chunked and embedded in this one process, with no Dagster:
    what the best plain script would pay. The model's load is timed apart, since every run
    worker pays it again."""
    from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.extract import ExtractionError, extract

    # Run workers silence pypdf's per-font warnings too; here they would bury the results.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    started = time.perf_counter()
    embedder = get_embedder(model)
    embedder.embed_documents(["warm up"])
    model_load = time.perf_counter() - started
    tokenizer = load_tokenizer(embedder.tokenizer_path)
    texts: list[str] = []
    failures: dict[str, str] = {}
    started = time.perf_counter()
    for path in paths:
        try:
            extracted = extract(path.read_bytes(), path.name)
        except ExtractionError as exc:
            failures[path.name] = f"[{exc.code}] {exc.message}"
            continue
        pages = [(p.number, p.text) for p in extracted.pages]
        chunks = chunk_pages(path.name, pages, tokenizer, max_tokens=embedder.max_tokens)
        texts.extend(c.text for c in chunks)
    prepared = time.perf_counter()
    embedder.embed_documents(
        texts
    )  # one call over every chunk, as the best plain script would batch it
    done = time.perf_counter()
    return {
        "model_load_seconds": model_load,
        "extract_chunk_seconds": prepared - started,
        "embed_seconds": done - prepared,
        "seconds": done - started,
        "chunks": len(texts),
        "failures": failures,
    }
