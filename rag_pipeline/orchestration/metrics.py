"""What the pipeline's other processes did, as Prometheus metrics read from the stores they
share: the registry, and the Dagster instance (runs, event log, heartbeats).

Workers run in other processes, and at scale on other hosts. Rather than prometheus-client's
multiprocess mode (a directory of memory-mapped files every process must share, one machine
only) or a port per warm process, whatever serves /metrics reads what the workers already
write: document counts from the registry, runs and slots from the run storage, heartbeats from
the instance's key-value store, and stage durations and failures from the event log, followed
by storage id. Each scrape reads only the events since the last one; the counters start at the
reader's start, as Prometheus counters do after any restart.
"""

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, RunsFilter
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rag_pipeline.core.registry import STAGES, DocumentStatus
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.execution.heartbeat import WORKER_TAG, last_beat, worker_last_seen
from rag_pipeline.orchestration.runs.run_slots import HOLDING, run_slots

# From a short note's text (milliseconds) to a large PDF's OCR (minutes).
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# At most this many events per stage and kind in one scrape; the rest come with the next.
PAGE = 5000


class StageEvents:
    """The ingest step's per-document events, followed in the event log: each materialization's
    `seconds` into a histogram per stage, each failure's code into a counter."""

    def __init__(self, instance: DagsterInstance, registry: CollectorRegistry) -> None:
        self._instance = instance
        self._lock = threading.Lock()
        start = instance.event_log_storage.get_maximum_record_id() or 0
        self._after = {(stage, kind): start for stage in STAGES for kind in ("done", "failed")}
        self.seconds = Histogram(
            "rag_stage_duration_seconds",
            "Seconds one document spent in a stage, from its materialization's metadata",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "rag_stage_failures",
            "Documents that failed a stage, by stage and error code",
            ["stage", "code"],
            registry=registry,
        )

    def follow(self) -> None:
        """Take in the events written since the last call."""
        with self._lock:
            for stage in STAGES:
                for record in self._page(stage, "done", self._instance.fetch_materializations):
                    meta = record.asset_materialization.metadata
                    seconds = meta.get("seconds")
                    if seconds is not None:
                        self.seconds.labels(stage).observe(float(seconds.value))
                for record in self._page(stage, "failed", self._instance.fetch_observations):
                    code = record.asset_observation.metadata.get("error_code")
                    if code is not None:
                        self.failures.labels(stage, str(code.value)).inc()

    def _page(self, stage: str, kind: str, fetch: Any) -> Iterator[Any]:
        after = self._after[stage, kind]
        result = fetch(
            AssetRecordsFilter(asset_key=AssetKey(stage), after_storage_id=after),
            limit=PAGE,
            ascending=True,
        )
        for record in result.records:
            after = max(after, record.storage_id)
            yield record
        self._after[stage, kind] = after


class PipelineState(Collector):
    """Gauges read at scrape time: documents by collection and status, the run queue and
    slots, and how long ago workers and running runs last beat their heartbeats."""

    def __init__(self, instance: DagsterInstance, store: DocumentStore, slots: int) -> None:
        self._instance = instance
        self._store = store
        self._slots = slots

    def collect(self) -> Iterator[GaugeMetricFamily]:
        documents = GaugeMetricFamily(
            "rag_documents",
            "Documents by collection and status (deleted ones left out)",
            labels=["collection", "status"],
        )
        queued = 0
        for collection, counts in sorted(self._store.registry.tenancy.status_counts().items()):
            for status, n in sorted(counts.items()):
                documents.add_metric([collection, status], n)
                queued += n if status == DocumentStatus.queued else 0
        yield documents
        yield GaugeMetricFamily(
            "rag_queue_documents", "Documents waiting for a run to start on them", value=queued
        )
        slots = run_slots(self._instance, unlimited=self._slots)
        yield GaugeMetricFamily("rag_run_slots", "Runs that may execute at once", slots.total)
        yield GaugeMetricFamily(
            "rag_run_slots_in_use", "Runs starting, executing or canceling", slots.in_use
        )
        yield GaugeMetricFamily("rag_runs_queued", "Runs waiting for a run slot", slots.queued)
        now = time.time()
        seen = worker_last_seen(self._instance)
        yield GaugeMetricFamily(
            "rag_worker_heartbeat_age_seconds",
            "Seconds since any warm worker last said it is alive (NaN: never)",
            value=now - seen if seen is not None else math.nan,
        )
        runs = GaugeMetricFamily(
            "rag_run_heartbeat_age_seconds",
            "Seconds since the process executing a run last beat its heartbeat",
            labels=["run_id", "worker"],
        )
        for run in self._instance.get_runs(RunsFilter(statuses=HOLDING)):
            beat = last_beat(self._instance, run.run_id)
            if beat is not None:
                runs.add_metric([run.run_id, run.tags.get(WORKER_TAG, "")], now - beat)
        yield runs
