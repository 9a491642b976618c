"""Resources: adapters from Dagster to `core`.

Their fields are plain values, built from the settings in `definitions.py`.
"""

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from dagster import ConfigurableResource, DagsterInstance
from pydantic import PrivateAttr, TypeAdapter

from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.stages.embedders import Embedder, get_embedder
from rag_pipeline.core.stages.embedders.endpoint import EndpointSpec
from rag_pipeline.core.stages.extract import ExtractionLimits, OcrOptions
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import EmbeddingEndpoint

INDEX_WRITE_POOL = "vector_index_writes"


class DocumentStoreResource(ConfigurableResource):  # type: ignore[type-arg]
    """Raw bytes and per-document Parquet artifacts under RAG_DATA_DIR, and the registry."""

    data_dir: str
    # Empty: SQLite under the data dir.
    registry_url: str = ""

    @property
    def store(self) -> DocumentStore:
        return DocumentStore(self.data_dir, self.registry_url or None)

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.store)


class EmbedderResource(ConfigurableResource):  # type: ignore[type-arg]
    """The embedding model, loaded on first use and then kept for the life of the process."""

    model_name: str
    batch_size: int
    torch_threads: int
    # RAG_EMBEDDING_ENDPOINTS, as its JSON: the servers usable as models.
    endpoints_json: str = "{}"

    def get(self, model_name: str | None = None) -> Embedder:
        """`model_name` (a collection's), or the configured default."""
        return get_embedder(
            model_name or self.model_name, self.batch_size, _endpoints(self.endpoints_json)
        )

    def threads(self, active_runs: int) -> int:
        """0 means: share the cores between the runs embedding right now. Two runs with two
        torch threads each on two cores embed 16% slower than with one thread each, and a run
        left alone with one thread uses half the machine."""
        if self.torch_threads > 0:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // max(1, active_runs))


@lru_cache(maxsize=4)
def _endpoints(declared_json: str) -> tuple[EndpointSpec, ...]:
    declared = TypeAdapter(dict[str, EmbeddingEndpoint]).validate_json(declared_json)
    return tuple(endpoint.spec(name) for name, endpoint in sorted(declared.items()))


class VectorIndexResource(ConfigurableResource):  # type: ignore[type-arg]
    """A collection on the Chroma server; connected on first use, not when a run starts."""

    chroma_url: str
    collection: str
    _index: VectorIndex | None = PrivateAttr(default=None)

    def get(self) -> VectorIndex:
        if self._index is None:
            self._index = VectorIndex(connect(self.chroma_url), self.collection)
        return self._index


class ChunkingResource(ConfigurableResource):  # type: ignore[type-arg]
    """Global chunking and extraction settings; a document's own options override them."""

    chunk_size: int
    chunk_overlap: int
    extraction_timeout_seconds: int
    ocr_languages: list[str]  # language sets tried in turn; empty turns OCR off
    ocr_page_timeout_seconds: int
    extraction_budget_seconds: int
    extract_memory_mb: int
    max_pages: int
    max_image_megapixels: float
    max_document_chars: int
    max_inflated_mb: int
    max_zip_entries: int
    max_zip_ratio: int

    def ocr(self) -> OcrOptions | None:
        if not self.ocr_languages:
            return None
        return OcrOptions(tuple(self.ocr_languages), float(self.ocr_page_timeout_seconds))

    def limits(self) -> ExtractionLimits:
        return ExtractionLimits(
            memory_mb=self.extract_memory_mb,
            max_pages=self.max_pages,
            max_megapixels=self.max_image_megapixels,
            max_chars=self.max_document_chars,
            max_inflated_mb=self.max_inflated_mb,
            max_zip_entries=self.max_zip_entries,
            max_zip_ratio=self.max_zip_ratio,
            budget_s=float(self.extraction_budget_seconds),
        )


class OperationsResource(ConfigurableResource):  # type: ignore[type-arg]
    """Where backups go and how long things are kept."""

    backup_dir: str
    backup_retention_days: float
    cleanup_processed_after_hours: float
    cleanup_rejected_after_days: float
    cleanup_partial_after_hours: float
    run_retention_days: float


# How often a writer waiting for the pool checks whether the holder died holding it.
DEAD_HOLDER_CHECK_SECONDS = 2.0
# A holder that is not a run (the API's delete) needs the slot for well under a second; one that
# has held it this long died holding it on another machine, where its process cannot be checked.
NON_RUN_LEASE_SECONDS = 600.0


def api_holder_id() -> str:
    """A pool holder id for a process that is not a run: host and pid say whether it still lives."""
    return f"api-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _holder_is_dead(instance: DagsterInstance, holder_id: str, held_since: float | None) -> bool:
    run = instance.get_run_by_id(holder_id)
    if run is not None:
        # Finished runs never write again; a run whose worker was killed reads FAILURE as soon
        # as its code server notices, and its retry must not wait for a slot nobody will free.
        return run.is_finished
    host, _, rest = holder_id.removeprefix("api-").partition("-")
    pid = rest.split("-", 1)[0]
    if holder_id.startswith("api-") and host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return held_since is not None and time.time() - held_since > NON_RUN_LEASE_SECONDS


def free_dead_holders(instance: DagsterInstance, own_id: str) -> list[str]:
    """Free the index-write slots of holders that died holding them; returns their ids.

    Dagster frees a finished run's slots only from the daemon's monitoring loop, and only when
    `free_slots_after_run_end_seconds` is set; a run started from the CLI has no daemon at all.
    So a writer that finds the pool held checks the holder itself.
    """
    storage: Any = instance.event_log_storage
    info = storage.get_concurrency_info(INDEX_WRITE_POOL)
    since = {
        step.run_id: step.assigned_timestamp.timestamp()
        for step in info.pending_steps
        if step.assigned_timestamp is not None
    }
    freed = []
    for slot in info.claimed_slots:
        if slot.run_id != own_id and _holder_is_dead(instance, slot.run_id, since.get(slot.run_id)):
            storage.free_concurrency_slots_for_run(slot.run_id)
            freed.append(slot.run_id)
    return freed


def release_index_write_pool(instance: DagsterInstance) -> list[str]:
    """Free every claim on the index-write pool, held or waiting; returns the holders freed.

    For a restored instance only. Its claims belong to processes of the backed-up deployment,
    none of which runs here; a run that was writing when the backup was taken never finishes in
    the restored instance, so no waiting writer would ever find its slot free.
    """
    storage: Any = instance.event_log_storage
    info = storage.get_concurrency_info(INDEX_WRITE_POOL)
    holders = sorted(
        {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
    )
    for holder in holders:
        storage.free_concurrency_slots_for_run(holder)
    return holders


@contextmanager
def index_write_slot(
    instance: DagsterInstance,
    run_id: str,
    holder: str,
    poll_seconds: float = 0.2,
    log: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold a slot of the index-write pool, so that exactly one process writes the collection.

    Two processes writing one Chroma collection corrupt it silently, so this is a hard rule.
    The pool is Dagster's own and shows in the UI. A slot whose holder died (a killed run
    worker, a killed API) is freed by the next writer that waits for it.
    """
    storage: Any = instance.event_log_storage
    if INDEX_WRITE_POOL not in storage.get_concurrency_keys():
        storage.initialize_concurrency_limit_to_default(INDEX_WRITE_POOL)
    if INDEX_WRITE_POOL not in storage.get_concurrency_keys():
        storage.set_concurrency_slots(INDEX_WRITE_POOL, 1)
    status = storage.claim_concurrency_slot(INDEX_WRITE_POOL, run_id, holder)
    next_check = time.monotonic()
    while not status.is_claimed:
        if time.monotonic() >= next_check:
            next_check = time.monotonic() + DEAD_HOLDER_CHECK_SECONDS
            for dead in free_dead_holders(instance, run_id):
                if log:
                    log(
                        f"freed the {INDEX_WRITE_POOL} slot held by {dead}: it is no longer running"
                    )
        time.sleep(status.sleep_interval or poll_seconds)
        status = storage.claim_concurrency_slot(INDEX_WRITE_POOL, run_id, holder)
    try:
        yield
    finally:
        storage.free_concurrency_slot_for_step(run_id, holder)
