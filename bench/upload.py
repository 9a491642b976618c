"""Upload latency: 1 MB PDFs from 16 concurrent clients against the running API.

The floor, measured in the same run with the same clients and bodies, is a minimal ASGI app
served by the same uvicorn that reads the multipart body and answers 202: what any Python HTTP
service on this machine pays before doing any work of its own.

    python -m bench upload [--clients 16] [--per-client 20]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.stages import REPO, RESULTS, free_port, wait_for_http

CORPUS = Path(os.environ.get("RAG_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
PDF = CORPUS / "pdf" / "gutenberg_intro-to-mathematics_41568-pdf.pdf"  # 1.02 MB


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


def _serve(args: list[str], env: dict[str, str], port: int, ready: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, cwd=REPO, env={**env, "RAG_API_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_http(f"http://127.0.0.1:{port}{ready}")
    return proc


def concurrent_latencies(
    clients: int, requests_of: Callable[[int], Iterable[Callable[[httpx.Client], None]]]
) -> list[float]:
    """Milliseconds per request, from `clients` threads each sending its requests in turn.

    `requests_of(n)` gives client n's requests, each a call that raises if the answer is wrong;
    anything it prepares before yielding is not timed. One failed request fails the benchmark.
    """

    def client(n: int) -> list[float]:
        latencies = []
        with httpx.Client(timeout=60) as http:
            for send in requests_of(n):
                started = time.perf_counter()
                send(http)
                latencies.append((time.perf_counter() - started) * 1000)
        return latencies

    with ThreadPoolExecutor(clients) as pool:
        return [ms for part in pool.map(client, range(clients)) for ms in part]


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


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=20)
    args = parser.parse_args(argv)
    body = PDF.read_bytes()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "RAG_DATA_DIR": str(Path(tmp) / "data"),
            "RAG_EMBEDDING_MODEL": "hash-384",  # uploads never touch the model
            "RAG_OPEN_ACCESS": "true",  # no key: the benchmark is the machine's one user
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--port"]
        port = free_port()
        floor = _serve([*uvicorn, str(port), "bench.upload:floor_app"], env, port, "/")
        try:
            _hammer(f"http://127.0.0.1:{port}/", 2, 3, body)  # warm up
            base = summary(
                _hammer(f"http://127.0.0.1:{port}/", args.clients, args.per_client, body)
            )
        finally:
            floor.terminate()
            floor.wait(timeout=30)
        port = free_port()
        api = _serve([sys.executable, "-m", "rag_api"], env, port, "/openapi.json")
        try:
            url = f"http://127.0.0.1:{port}/documents"
            _hammer(url, 2, 3, body)
            measured = summary(_hammer(url, args.clients, args.per_client, body))
            landed = sum(1 for p in (Path(tmp) / "data" / "landing").rglob("*.pdf"))
        finally:
            api.terminate()
            api.wait(timeout=30)

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
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "upload.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"upload latency, {args.clients} clients, {len(body) / 1e6:.2f} MB PDFs")
    print(f"{'':<8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, row in (("floor", base), ("api", measured)):
        print(f"{name:<8}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['max_ms']:>10.1f}")
    print(
        f"ratio floor/api: p50 {report['ratio_p50_floor_over_api']}, "
        f"p99 {report['ratio_p99_floor_over_api']}; {landed} files landed"
    )


if __name__ == "__main__":
    main()
