"""HTTP clients timing their requests, and the percentiles the benchmarks report of them."""

import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx


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


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }
