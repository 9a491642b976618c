from dagster import DagsterInstance, DagsterRunStatus, DynamicPartitionsDefinition, RunsFilter
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, WILL_RETRY_TAG

from rag_pipeline.core.store import DocumentStore

# One partition per document; the key is the document id (readable name + content hash).
DOCUMENTS = "documents"
documents = DynamicPartitionsDefinition(name=DOCUMENTS)

# Range runs the sensor launches also name their documents: a document at either end of the
# range that is deleted before the run starts leaves Dagster unable to resolve the range, and
# the others must still run (and their status must still find the run).
DOCUMENT_IDS_TAG = "rag/document_ids"


# Deferred partition removals, one empty file per document id, under the data dir.
RELEASES_DIR = "partition_releases"

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
    """Remove a retired document's partition now, or once no run needs it; True if removed now.

    A deferred removal is kept as a marker under `partition_releases/`; the sensor finishes
    it (`release_deferred_partitions`). Status reads a partition whose document has a tombstone
    and no source record as deleted meanwhile.
    """
    marker = store.root / RELEASES_DIR / key
    if partition_in_use(instance, key):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return False
    if instance.has_dynamic_partition(DOCUMENTS, key):
        instance.delete_dynamic_partition(DOCUMENTS, key)
    marker.unlink(missing_ok=True)
    return True


def release_deferred_partitions(instance: DagsterInstance, store: DocumentStore) -> list[str]:
    """Finish deferred partition removals whose runs are done; returns the keys removed."""
    folder = store.root / RELEASES_DIR
    if not folder.is_dir():
        return []
    released = []
    for marker in sorted(folder.iterdir()):
        key = marker.name
        if store.read_source(key) is not None:
            marker.unlink(missing_ok=True)  # uploaded again since: the partition is its again
        elif release_partition(instance, store, key):
            released.append(key)
    return released
