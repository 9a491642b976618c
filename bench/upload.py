"""Upload latency: 1 MB PDFs from 16 concurrent clients against the running API.

The floor, measured in the same run with the same clients and bodies, is a minimal ASGI app
served by the same uvicorn that reads the multipart body and answers 202: what any Python HTTP
service on this machine pays before doing any work of its own.

    python -m bench upload [--clients 16] [--per-client 20]
"""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.harness import corpus
from bench.harness.clients import concurrent_latencies, summary
from bench.harness.command import arguments
from bench.harness.processes import REPO, start_server, stop
from bench.harness.results import write_json
from bench.harness.stack import Stack

PDF = "pdf/gutenberg_intro-to-mathematics_41568-pdf.pdf"  # 1.02 MB


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole request body and answers 202, as cheaply as ASGI allows."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def serve_floor(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """`floor_app` under uvicorn on a free port, in a process group of its own."""

    def launch(port: int) -> subprocess.Popen[bytes]:
        uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--port", str(port)]
        return subprocess.Popen(
            [*uvicorn, "bench.upload:floor_app"], cwd=REPO, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    proc, port = start_server(launch, "/")
    return proc, f"http://127.0.0.1:{port}/"


def _hammer(url: str, clients: int, per_client: int, body: bytes) -> list[float]:
    """Each client uploads distinct bytes (so nothing is a duplicate) and times each request."""

    def requests_of(n: int) -> Iterator[Callable[[httpx.Client], None]]:
        for i in range(per_client):
            unique = body + f"\n% client {n} upload {i} {time.time_ns()}\n".encode()
            yield lambda http, name=f"doc-{n}-{i}.pdf", data=unique: _upload(http, url, name, data)

    return concurrent_latencies(clients, requests_of)


def _upload(http: httpx.Client, url: str, name: str, data: bytes) -> None:
    response = http.post(url, files={"file": (name, data)})
    if response.status_code not in (200, 202):
        raise RuntimeError(f"upload answered {response.status_code}: {response.text}")


def main(argv: list[str] | None = None) -> None:
    parser = arguments("upload", __doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=20)
    args = parser.parse_args(argv)
    body = corpus.path(PDF).read_bytes()

    # Uploads never touch the model or the index: the API alone, with the hash embedder.
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), "hash-384") as stack:
        floor, url = serve_floor(stack.env)
        try:
            _hammer(url, 2, 3, body)  # warm up
            base = summary(_hammer(url, args.clients, args.per_client, body))
        finally:
            stop(floor)
        stack.start("api")
        url = f"{stack.api_url}/documents"
        _hammer(url, 2, 3, body)
        measured = summary(_hammer(url, args.clients, args.per_client, body))
        stack.stop("api")
        from rag_pipeline.core.storage.data_dir import DocumentStore

        # Uploads are kept in the store's incoming folder until ingested (no daemon runs here).
        landed = sum(1 for _ in DocumentStore(stack.data).incoming_dir.rglob("*.pdf"))

    report = {
        "clients": args.clients,
        "body_bytes": len(body),
        "floor": base,
        "api": measured,
        "files_landed": landed,
        "ratio_p50_floor_over_api": round(base["p50_ms"] / measured["p50_ms"], 3),
        "ratio_p99_floor_over_api": round(base["p99_ms"] / measured["p99_ms"], 3),
        "cpus": os.cpu_count(),
    }
    written = write_json("upload", report)
    print(f"upload latency, {args.clients} clients, {len(body) / 1e6:.2f} MB PDFs")
    print(f"{'':<8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in (("floor", base), ("api", measured)):
        print(f"{name:<8}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['max_ms']:>10.1f}")
    print(
        f"ratio floor/api: p50 {report['ratio_p50_floor_over_api']}, "
        f"p99 {report['ratio_p99_floor_over_api']}; {landed} files landed"
    )
    print(f"written to {written}")


if __name__ == "__main__":
    main()
