"""A collection's model switch as the API and the command line ask for it: start it, retry
what failed, or cancel it; each launches (or cancels) the switch's backfill."""

from dataclasses import dataclass

from dagster import DagsterInstance

from rag_pipeline.core.registry import Collection
from rag_pipeline.core.registry.switches import SwitchConflict
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.model_switch import ModelSwitch
from rag_pipeline.orchestration.partitions import DagsterPartitions
from rag_pipeline.orchestration.runs.backfill import backfill_switch, cancel_switch_backfills


@dataclass(frozen=True)
class Launched:
    collection: Collection
    backfill_id: str | None
    documents: int


def start(
    instance: DagsterInstance,
    store: DocumentStore,
    name: str,
    model: str,
    default_model: str,
    holder: str,
    index: VectorIndex,
) -> Launched:
    """Switch the collection to `model` (known to be available): a new generation, and a
    backfill writing it. Raises SwitchConflict (a switch under way, or the same model)."""
    ModelSwitch(store).start(name, model, default_model)
    return _launch(instance, store, name, holder, index)


def retry(
    instance: DagsterInstance, store: DocumentStore, name: str, holder: str, index: VectorIndex
) -> Launched:
    """Run the switch again for the documents its generation still lacks (failed ones among
    them); swaps at once when none is missing any more."""
    if ModelSwitch(store).get(name).pending_model is None:
        raise SwitchConflict(
            "no_model_switch", f"collection {name!r} has no model switch under way"
        )
    return _launch(instance, store, name, holder, index)


def cancel(
    instance: DagsterInstance, store: DocumentStore, name: str, holder: str, index: VectorIndex
) -> Collection:
    """Abandon the switch: its backfill is cancelled and its partial generation removed."""
    switch = ModelSwitch(store)
    generation = switch.get(name).pending_generation
    kept = switch.cancel(name, index, DagsterPartitions(instance, store, holder))
    if generation is not None:
        cancel_switch_backfills(instance, name, generation)
    return kept


def _launch(
    instance: DagsterInstance, store: DocumentStore, name: str, holder: str, index: VectorIndex
) -> Launched:
    switch = ModelSwitch(store)
    pending = switch.get(name)
    backfill_id, count = backfill_switch(instance, store, name)
    if backfill_id is None and pending.pending_generation is not None:
        # Nothing left with a partition: an empty collection, or every document written.
        partitions = DagsterPartitions(instance, store, holder)
        switch.finish(name, pending.pending_generation, index, partitions)
    return Launched(switch.get(name), backfill_id, count)


def complete_ready(
    instance: DagsterInstance, store: DocumentStore, index: VectorIndex, holder: str
) -> list[str]:
    """Swap every collection whose switch is complete though no step swapped it (its last
    missing document was deleted, or its last one in flight failed), and tidy what a swap or
    cancel that stopped part-way left (`ModelSwitch.tidy`); cleanup's backstop. Returns the
    collections swapped."""
    switch = ModelSwitch(store)
    partitions = DagsterPartitions(instance, store, holder)
    swapped = [
        home.name
        for home in store.registry.tenancy.collections()
        if home.pending_generation is not None
        and switch.finish(home.name, home.pending_generation, index, partitions) is not None
    ]
    switch.tidy(index, partitions)
    return swapped
