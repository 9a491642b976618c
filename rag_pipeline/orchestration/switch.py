"""A model switch in Dagster: a backfill of `chunk_embeddings` and `vector_index` over the
collection's partitions (`runs/backfill.py`), tagged with the generation it writes
(`rag/model-switch`).

The ingestion step sees the tag and writes the pending generation instead of the active one,
leaving each document's status alone (it stays indexed, served by the active generation). A
document indexed by an ordinary run while its collection switches is written to both
generations in that run (`follow`). Whichever step writes the last missing document swaps the
collection and removes the old generation (`ModelSwitch.finish`).
"""

from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    Failure,
    MetadataValue,
)

from rag_pipeline.core.registry import Collection
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.stages.ingest import StageError, StageResult
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.model_switch import ModelSwitch
from rag_pipeline.orchestration.partitions import SWITCH_TAG, DagsterPartitions
from rag_pipeline.orchestration.resources import EmbedderResource, index_write_slot
from rag_pipeline.orchestration.runs.step import CancelWatch


def switch_target(tags: Mapping[str, str]) -> tuple[str, int] | None:
    value = tags.get(SWITCH_TAG)
    if not value:
        return None
    name, _, generation = value.rpartition(":")
    return name, int(generation)


def reembed(
    context: AssetExecutionContext,
    store: DocumentStore,
    keys: list[str],
    target: tuple[str, int],
    embedder: EmbedderResource,
    index: VectorIndex,
) -> Iterator[Any]:
    """The step of a switch run: its documents into the pending generation; the documents'
    status is left alone. A document the new model fails on fails this run, with its reason,
    and the old generation keeps serving."""
    name, generation = target
    home = store.registry.tenancy.collection(name)
    if home is None or home.pending_generation != generation:
        context.log.info(f"collection {name!r} no longer switches to generation {generation}")
        return
    own = {
        doc.id
        for doc in store.registry.reads.documents(keys)
        if doc.collection == name and doc.live
    }
    own_keys = [k for k in keys if k in own]
    failed = yield from carry(context, store, home, own_keys, embedder, index, settled=False)
    # A document deleted while the run embedded it needs nothing more: not a failure.
    still = {doc.id for doc in store.registry.reads.documents(list(failed)) if doc.live}
    failed = {key: err for key, err in failed.items() if key in still}
    if failed:
        lines = [f"{key}: [{err.code}] {err.message}" for key, err in failed.items()]
        raise Failure(
            description=f"{len(failed)} of {len(own_keys)} document(s) failed to switch:\n"
            + "\n".join(lines),
            metadata={
                "failed": MetadataValue.json(
                    {k: {"code": e.code, "message": e.message} for k, e in failed.items()}
                )
            },
            allow_retries=False,
        )


def carry(
    context: AssetExecutionContext,
    store: DocumentStore,
    home: Collection,
    keys: Sequence[str],
    embedder: EmbedderResource,
    index: VectorIndex,
    settled: bool,
) -> Generator[Any, None, dict[str, StageError]]:
    """Embed the documents with the pending model and write them to the pending generation,
    recording each one's outcome; swap if that was the last. `settled`: the documents are the
    calling ingestion step's own, in both generations now (not runs in flight). Returns the
    failures."""
    switch = ModelSwitch(store)
    if not keys or home.pending_model is None or home.pending_generation is None:
        return {}
    generation = home.pending_generation
    model = embedder.get(home.pending_model)
    canceled = CancelWatch(context)
    embedded = switch.embed(keys, model, before_slice=canceled.check)
    ready = [key for key in keys if isinstance(embedded.get(key), StageResult)]
    for key in keys:
        yield _event("chunk_embeddings", key, home, embedded[key])
    indexed: dict[str, StageResult | StageError] = {}
    if ready:
        with index_write_slot(
            context.instance, context.run_id, "model switch", log=context.log.warning
        ):
            # A cancel removes the generation holding the pool: never write it again after.
            now = store.registry.tenancy.collection(home.name)
            if now is None or now.pending_generation != generation:
                context.log.info(f"collection {home.name!r}'s switch ended meanwhile")
                return {}
            indexed = switch.index(home, ready, index)
        for key in ready:
            yield _event("vector_index", key, home, indexed[key])
    switch.record(home, embedded, indexed)
    failed = {key: err for key, err in (embedded | indexed).items() if isinstance(err, StageError)}
    partitions = DagsterPartitions(context.instance, store, context.run_id)
    swapped = switch.finish(
        home.name, generation, index, partitions, settled=keys if settled else ()
    )
    if swapped is not None:
        context.log.info(
            f"collection {home.name!r} now serves generation {generation} ({home.pending_model});"
            " the old generation is removed"
        )
    return failed


def follow(
    context: AssetExecutionContext,
    store: DocumentStore,
    keys: Sequence[str],
    embedder: EmbedderResource,
    index: VectorIndex,
) -> Iterator[Any]:
    """Documents an ordinary run has just indexed, whose collection is switching, go to the
    pending generation too, so none is missing there at the swap. A failure there is the
    switch's (its status says so), not the document's."""
    for home, own in ModelSwitch(store).pending(keys).values():
        failed = yield from carry(context, store, home, own, embedder, index, settled=True)
        for key, err in failed.items():
            context.log.warning(f"{key}: model switch of {home.name!r} [{err.code}] {err.message}")


def _event(
    stage: str, key: str, home: Collection, outcome: StageResult | StageError
) -> AssetMaterialization | AssetObservation:
    tags: dict[str, Any] = {"collection": home.name, "generation": home.pending_generation or 0}
    if isinstance(outcome, StageError):
        return AssetObservation(
            asset_key=stage,
            partition=key,
            description=f"model switch: [{outcome.code}] {outcome.message}",
            metadata={**tags, "error_code": outcome.code, "error_message": outcome.message},
        )
    meta: dict[str, Any] = {**tags, **outcome.metadata}
    if "path" in meta:
        meta["path"] = MetadataValue.path(meta["path"])
    return AssetMaterialization(asset_key=stage, partition=key, metadata=meta)
