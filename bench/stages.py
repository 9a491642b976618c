"""Stage benchmark: seconds per stage through Dagster, against a floor measured in the same run.

The floor is the same work (extraction, chunking, embedding) done by calling `core` directly in
one plain Python process, with no Dagster, no Parquet and no index. The pipeline figure comes
from a real range run of `ingest_job` on a temporary instance with a real Chroma server and the
real model. Each stage's ratio is floor seconds / pipeline seconds: 1.0 means no overhead.

    python -m bench stages [--docs rel/path ...]      # `make bench` runs it with the others
"""

import os
import tempfile
import time
from pathlib import Path

from bench.harness import corpus
from bench.harness.command import arguments
from bench.harness.pipeline import add, run_range
from bench.harness.results import write_json
from bench.harness.stack import MODEL, Stack

DEFAULT_DOCS = [
    "pdf/uns_pdf2image-memory-error-test-400p.pdf",
    "pdf/pdfminer_naacl06-shinyama.pdf",
    "text/uns_norwich-city.txt",
]


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
    from rag_pipeline.core.documents.reports import document_reports
    from rag_pipeline.core.storage.data_dir import DocumentStore

    result, wall = run_range(add(paths))
    assert result.success
    reports = document_reports(DocumentStore(os.environ["RAG_DATA_DIR"]))
    seconds: dict[str, float] = {"wall": wall, "chunks": 0}
    for report in reports:
        for stage, info in report.stages.items():
            seconds[stage] = seconds.get(stage, 0.0) + float(info.metadata["seconds"])
        seconds["chunks"] += report.chunks or 0
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = arguments("stages", __doc__)
    parser.add_argument("--docs", nargs="+", default=DEFAULT_DOCS)
    args = parser.parse_args(argv)
    paths = [corpus.path(rel) for rel in args.docs]

    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp)) as stack:
        stack.start("chroma")
        os.environ.update(stack.env)
        base = floor(paths)
        piped = pipeline(paths)

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
    written = write_json("stages", report)
    print(f"{'stage':<18}{'floor s':>10}{'pipeline s':>12}{'ratio':>8}")
    for s in stages:
        print(
            f"{s:<18}{base[s]:>10.2f}{piped[s]:>12.2f}{report['ratio_floor_over_pipeline'][s]:>8.2f}"
        )
    print(
        f"{'whole run (wall)':<18}{sum(base[s] for s in stages):>10.2f}"
        f"{piped['wall']:>12.2f}{report['ratio_total']:>8.2f}"
    )
    print(f"chunks: {piped['chunks']}; written to {written}")


if __name__ == "__main__":
    main()
