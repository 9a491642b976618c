"""The documents' partitions, and what a run's tags say about them: the one place that reads
and writes Dagster's partition tags and the sensor's list of documents."""

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from dagster import (
    AssetObservation,
    DagsterInstance,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
    MetadataValue,
    RunsFilter,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    WILL_RETRY_TAG,
)

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.resources import index_write_slot

# One partition per document; the key is the document id (readable name + content hash).
DOCUMENTS = "documents"
documents = DynamicPartitionsDefinition(name=DOCUMENTS)

# Range runs the sensor launches also name their documents: a document at either end of the
# range that is deleted before the run starts leaves Dagster unable to resolve the range, and
# the others must still run (and their status must still find the run).
DOCUMENT_IDS_TAG = "rag/document_ids"
# `<collection>:<generation>` on the runs of a model switch (orchestration/switch.py): they
# write a pending index generation and leave the documents' status alone.
SWITCH_TAG = "rag/model-switch"


# Where Dagster keeps a run's partitions: a range by its two ends, or one key.
_PARTITION_TAGS = (
    ASSET_PARTITION_RANGE_START_TAG,
    ASSET_PARTITION_RANGE_END_TAG,
    PARTITION_NAME_TAG,
)


def range_tags(keys: Sequence[str]) -> dict[str, str]:
    """Tags of a run over these documents, in partition order: the range, and its ids."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: keys[0],
        ASSET_PARTITION_RANGE_END_TAG: keys[-1],
        DOCUMENT_IDS_TAG: ",".join(keys),
    }


# Runs over documents picked one by one (a reprocess, a retry), tagged `rag/source`.
PICKED_SOURCES = ("reprocess", "retry")


def rerun_tags(instance: DagsterInstance, keys: Sequence[str]) -> dict[str, str]:
    """Tags of a run over documents picked one by one: their partition, or the range from the
    first to the last in partition order with their ids. Dagster needs a range to run a subset
    of stages on partitions; the ingest step runs only the documents named, and the event log
    counts the run as planned only for those (execution/storage.py), so the documents between
    them are neither run nor shown as in progress or failed."""
    if len(keys) == 1:
        return {PARTITION_NAME_TAG: keys[0]}
    position = {key: i for i, key in enumerate(instance.get_dynamic_partitions(DOCUMENTS))}
    return range_tags(sorted(keys, key=lambda key: position.get(key, len(position))))


def named_documents(tags: Mapping[str, str]) -> list[str] | None:
    """The documents a run's tags name one by one (its one partition, or the sensor's list);
    None if they give only a range's ends."""
    if PARTITION_NAME_TAG in tags:
        return [tags[PARTITION_NAME_TAG]]
    if DOCUMENT_IDS_TAG in tags:
        return [key for key in tags[DOCUMENT_IDS_TAG].split(",") if key]
    return None


def run_documents(tags: Mapping[str, str], ordered_keys: Callable[[], Sequence[str]]) -> list[str]:
    """A run's documents. `ordered_keys` gives the partitions in order, and is called only for
    a range without a list, which is resolved (as Dagster does) by the positions of its ends:
    with an end gone, the run names nothing that can be found."""
    named = named_documents(tags)
    if named is not None:
        return named
    if ASSET_PARTITION_RANGE_START_TAG not in tags:
        return []
    keys = list(ordered_keys())
    position = {key: i for i, key in enumerate(keys)}
    start = position.get(tags[ASSET_PARTITION_RANGE_START_TAG])
    end = position.get(tags.get(ASSET_PARTITION_RANGE_END_TAG, ""))
    return keys[start : end + 1] if start is not None and end is not None else []


def partition_in_use(instance: DagsterInstance, key: str) -> bool:
    """Whether a run that has yet to finish, or to be retried, names this partition.

    Dagster resolves a range run by the positions of its ends whenever it creates, launches or
    retries the run; with an end's partition gone it cannot, and the run never starts. So a
    partition named by such a run stays until the run is done with it.
    """
    for tag in _PARTITION_TAGS:
        for run in instance.get_runs(filters=RunsFilter(tags={tag: key}), limit=100):
            if not run.is_finished:
                return True
            if (
                run.status == DagsterRunStatus.FAILURE
                and instance.run_retries_enabled
                and run.tags.get(WILL_RETRY_TAG) != "false"
                and not instance.get_run_ids(
                    filters=RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1
                )
            ):
                return True  # failed, and its retry is not created yet
    return False


# How long after a sensor tick claimed a document its run may still be on its way: the daemon
# adds a tick's partitions, then creates its runs one by one.
CLAIM_GRACE_SECONDS = 120.0


def _claimed_for_a_run(store: DocumentStore, key: str) -> bool:
    """Whether a sensor tick claimed this document moments ago, so a run naming it may not
    exist yet. Removing its partition then would leave the daemon creating a range run whose
    end is gone: Dagster refuses to create it, and retries that tick, and fails it, for ever
    (seen in the load test: the sensor stopped and 95 documents stayed queued)."""
    doc = store.registry.reads.get_row(key)
    if doc is None or not doc.submitted_at or doc.run_id is not None:
        return False  # never claimed, added by a command, or a run took it (that run counts)
    return time.time() - doc.submitted_at < CLAIM_GRACE_SECONDS


def _named_by_a_run(instance: DagsterInstance, key: str) -> bool:
    """Whether any run, finished or not, names this partition in its tags."""
    return any(
        instance.get_run_ids(filters=RunsFilter(tags={tag: key}), limit=1)
        for tag in _PARTITION_TAGS
    )


def release_partition(instance: DagsterInstance, store: DocumentStore, key: str) -> bool:
    """Remove a deleted document's partition now, or once no run needs it; True if removed.

    The registry keeps the removal due (`release_partition` on the document's row) until it is
    done; the sensor finishes deferred ones (`release_deferred_partitions`).
    """
    if partition_in_use(instance, key):
        return False
    if _claimed_for_a_run(store, key) and not _named_by_a_run(instance, key):
        return False
    if instance.has_dynamic_partition(DOCUMENTS, key):
        instance.delete_dynamic_partition(DOCUMENTS, key)
    store.registry.lifecycle.partition_released(key)
    return True


def release_deferred_partitions(instance: DagsterInstance, store: DocumentStore) -> list[str]:
    """Finish deferred partition removals whose runs are done; returns the keys removed."""
    return [
        key
        for key in store.registry.reads.partitions_to_release()
        if release_partition(instance, store, key)
    ]


class DagsterPartitions:
    """The documents service's view of Dagster: partitions and the index-write pool."""

    def __init__(self, instance: DagsterInstance, store: DocumentStore, holder: str) -> None:
        self.instance = instance
        self.store = store
        self.holder = holder

    def release(self, doc_id: str) -> bool:
        return release_partition(self.instance, self.store, doc_id)

    def index_write(self, purpose: str) -> AbstractContextManager[None]:
        return index_write_slot(self.instance, self.holder, purpose)


def observe_metadata(
    instance: DagsterInstance, key: str, collection: str, metadata: dict[str, Any]
) -> bool:
    """Show a document's changed metadata on its partition in the UI (an observation of
    `raw_document`, not a materialization: nothing is re-computed). False if it has no
    partition yet: its `raw_document` materialization will carry the metadata."""
    if not instance.has_dynamic_partition(DOCUMENTS, key):
        return False
    instance.report_runless_asset_event(
        AssetObservation(
            asset_key="raw_document",
            partition=key,
            description="metadata changed",
            metadata={"collection": collection, "document_metadata": MetadataValue.json(metadata)},
        )
    )
    return True
