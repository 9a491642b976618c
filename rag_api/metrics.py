"""The API's Prometheus registry: what this process measures itself (search latency, SSE
streams open), and the pipeline's state and events read from the shared stores
(rag_pipeline.orchestration.metrics).

One registry per app, not prometheus-client's global one: an app built twice in a process (the
tests) must not register its metrics twice. The API runs as one process (`rag-api`), so its
own counters need no multiprocess mode."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.metrics import PipelineState, StageEvents

# A query embeds in ~20 ms; hybrid search over many collections reaches ~130 ms at p99.
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self, instance: DagsterInstance, store: DocumentStore, slots: int) -> None:
        self.registry = CollectorRegistry()
        self.search_seconds = Histogram(
            "rag_search_duration_seconds",
            "Seconds to answer a search, by the mode that served it",
            ["mode"],
            buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )
        self.sse_open = Gauge(
            "rag_sse_streams_open",
            "Status event streams (GET /documents/{id}/events) open now",
            registry=self.registry,
        )
        self.stage_events = StageEvents(instance, self.registry)
        self.registry.register(PipelineState(instance, store, slots))

    @contextmanager
    def sse_stream(self) -> Iterator[None]:
        self.sse_open.inc()
        try:
            yield
        finally:
            self.sse_open.dec()

    def exposition(self) -> bytes:
        """The text format, after taking in the pipeline's events since the last scrape."""
        self.stage_events.follow()
        return bytes(generate_latest(self.registry))
