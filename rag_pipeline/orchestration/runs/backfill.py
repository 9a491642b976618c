"""A backfill of one collection's documents: what the UI's backfill dialog launches, for exactly
that collection's partitions (`rag-pipeline backfill --collection <name>`).

Dagster has no public call to launch an asset backfill outside the UI or GraphQL, so this is
the one module that builds one (`PartitionBackfill`, private API, pinned by
tests/test_backfill.py). The backfill daemon then runs it as it runs the UI's: ranges of at
most RAG_MAX_DOCS_PER_RUN documents (`BackfillPolicy.multi_run`), tagged with the collection.
A model switch is such a backfill of `chunk_embeddings` and `vector_index` (`backfill_switch`).
"""

from collections.abc import Sequence

from dagster import AssetKey, DagsterInstance
from dagster._core.execution.backfill import (
    BulkActionsFilter,
    BulkActionStatus,
    PartitionBackfill,
)
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_timestamp

from rag_pipeline.core.registry import STAGES, CollectionNotFound
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.model_switch import ModelSwitch
from rag_pipeline.orchestration.partitions import DOCUMENTS, SWITCH_TAG
from rag_pipeline.orchestration.sensors import COLLECTION_TAG


def collection_partitions(instance: DagsterInstance, store: DocumentStore, name: str) -> list[str]:
    """The collection's live documents that have a partition, in partition order (documents
    still waiting for the sensor have none yet, and get their run from it)."""
    if store.registry.tenancy.collection(name) is None:
        raise CollectionNotFound(name)
    ids = store.registry.tenancy.collection_document_ids(name)
    live = {doc.id for doc in store.registry.reads.documents(ids) if doc.live}
    return [key for key in instance.get_dynamic_partitions(DOCUMENTS) if key in live]


def backfill_collection(
    instance: DagsterInstance,
    store: DocumentStore,
    name: str,
    stages: Sequence[str] = STAGES,
) -> tuple[str, int]:
    """Launch a backfill of these stages over the collection's partitions; returns its id and
    how many documents it covers. Raises ValueError when there is nothing to backfill."""
    from rag_pipeline.definitions import defs

    keys = collection_partitions(instance, store, name)
    if not keys:
        raise ValueError(f"collection {name!r} has no document with a partition to backfill")
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=defs.resolve_asset_graph(),
        partition_names=keys,
        asset_selection=[AssetKey(stage) for stage in stages],
        backfill_timestamp=get_current_timestamp(),
        tags={COLLECTION_TAG: name, "rag/source": "backfill"},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"collection {name}",
        description=f"{', '.join(stages)} for the {len(keys)} documents of collection {name!r}",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id, len(keys)


SWITCH_STAGES = ("chunk_embeddings", "vector_index")


def backfill_switch(
    instance: DagsterInstance, store: DocumentStore, name: str
) -> tuple[str | None, int]:
    """A backfill of the switch's stages over the collection's documents the pending generation
    still needs that have a partition (the others are written by their own runs, see `carry`).
    Returns its id (None when there is nothing to backfill) and how many documents it covers."""
    from rag_pipeline.definitions import defs

    collection = ModelSwitch(store).get(name)
    missing = set(store.registry.switches.unfinished(name))
    keys = [key for key in instance.get_dynamic_partitions(DOCUMENTS) if key in missing]
    if not keys or collection.pending_generation is None:
        return None, 0
    generation = collection.pending_generation
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=defs.resolve_asset_graph(),
        partition_names=keys,
        asset_selection=[AssetKey(stage) for stage in SWITCH_STAGES],
        backfill_timestamp=get_current_timestamp(),
        tags={
            COLLECTION_TAG: name,
            SWITCH_TAG: f"{name}:{generation}",
            "rag/source": "model-switch",
        },
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"model switch {name} to {collection.pending_model}",
        description=f"re-embed the {len(keys)} documents of collection {name!r} with "
        f"{collection.pending_model} into index generation {generation}",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id, len(keys)


def cancel_switch_backfills(instance: DagsterInstance, name: str, generation: int) -> int:
    """Cancel the backfills still running for this switch, as the UI's Cancel does (the daemon
    then stops launching their runs and cancels those in flight); returns how many."""
    running = instance.get_backfills(
        filters=BulkActionsFilter(
            statuses=[BulkActionStatus.REQUESTED],
            tags={SWITCH_TAG: f"{name}:{generation}"},
        )
    )
    for backfill in running:
        instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))  # type: ignore[no-untyped-call]
    return len(running)
