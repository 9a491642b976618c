from contextlib import AbstractContextManager

from dagster import DagsterInstance, DagsterRunStatus, DynamicPartitionsDefinition, RunsFilter
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, WILL_RETRY_TAG

from rag_pipeline.core.store import DocumentStore
from rag_pipeline.resources import index_write_slot

# One partition per document; the key is the document id (readable name + content hash).
DOCUMENTS = "documents"
documents = DynamicPartitionsDefinition(name=DOCUMENTS)

# Range runs the sensor launches also name their documents: a document at either end of the
# range that is deleted before the run starts leaves Dagster unable to resolve the range, and
# the others must still run (and their status must still find the run).
DOCUMENT_IDS_TAG = "rag/document_ids"


# Where Dagster keeps a run's partitions: a range by its two ends, or one key.
_PARTITION_TAGS = (
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
    "dagster/partition",
)


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


def release_partition(instance: DagsterInstance, store: DocumentStore, key: str) -> bool:
    """Remove a deleted document's partition now, or once no run needs it; True if removed.

    The registry keeps the removal due (`release_partition` on the document's row) until it is
    done; the sensor finishes deferred ones (`release_deferred_partitions`).
    """
    if partition_in_use(instance, key):
        return False
    if instance.has_dynamic_partition(DOCUMENTS, key):
        instance.delete_dynamic_partition(DOCUMENTS, key)
    store.registry.partition_released(key)
    return True


def release_deferred_partitions(instance: DagsterInstance, store: DocumentStore) -> list[str]:
    """Finish deferred partition removals whose runs are done; returns the keys removed."""
    return [
        key
        for key in store.registry.partitions_to_release()
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
