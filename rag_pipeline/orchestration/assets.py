"""The five ingestion assets, computed together in one step over a range of documents.

One step, because per-document outcomes only work within a step: the step logs a
materialization per document and stage as each finishes, records why a document stopped, and
raises `Failure` at the end naming the documents that failed. Their batch-mates are unaffected.
"""

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetSelection,
    AssetSpec,
    BackfillPolicy,
    Backoff,
    Failure,
    MetadataValue,
    RetryPolicy,
    define_asset_job,
    multi_asset,
)

from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.stages import indexing, ingest
from rag_pipeline.core.stages.embedders import Embedder
from rag_pipeline.core.stages.ingest import StageError, StageResult
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.execution.executor import warm_executor
from rag_pipeline.orchestration import checks, switch
from rag_pipeline.orchestration.partitions import (
    documents,
    release_partition,
)
from rag_pipeline.orchestration.resources import (
    ChunkingResource,
    DocumentStoreResource,
    EmbedderResource,
    VectorIndexResource,
    index_write_slot,
)
from rag_pipeline.orchestration.runs.step import CancelWatch, active_runs, run_documents
from rag_pipeline.settings import get_settings

STAGES = ("raw_document", "document_text", "document_chunks", "chunk_embeddings", "vector_index")

_DESCRIPTIONS = {
    "raw_document": "The document's bytes, checked against their sha256, with the sniffed type.",
    "document_text": "Text per page: pypdf for PDF, detected encoding for text, NFKC-normalised.",
    "document_chunks": "Token-aware chunks at paragraph and sentence boundaries, with pages "
    "and character offsets, and each chunk's term frequencies for lexical search.",
    "chunk_embeddings": "One normalised vector per chunk from its collection's embedding model.",
    "vector_index": "The document's vectors in its collection's Chroma collection, ids "
    "<document id>:<n>, and its terms published to lexical search in the same step.",
}
_KINDS = {
    "raw_document": {"file"},
    "document_text": {"parquet"},
    "document_chunks": {"parquet", "duckdb"},
    "chunk_embeddings": {"parquet", "pytorch"},
    "vector_index": {"chroma"},
}

MAX_DOCS_PER_RUN = get_settings().max_docs_per_run


def _specs() -> list[AssetSpec]:
    specs = []
    for upstream, stage in zip((None, *STAGES), STAGES, strict=False):
        specs.append(
            AssetSpec(
                stage,
                deps=[upstream] if upstream else [],
                partitions_def=documents,
                group_name="ingestion",
                description=_DESCRIPTIONS[stage],
                kinds=_KINDS[stage],
                skippable=True,
            )
        )
    return specs


@multi_asset(
    name="ingest_documents",
    specs=_specs(),
    check_specs=checks.CHECK_SPECS,
    can_subset=True,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_DOCS_PER_RUN),
    # Only transient errors reach Dagster's retry: document failures raise Failure without it.
    retry_policy=RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL),
)
def ingest_documents(
    context: AssetExecutionContext,
    documents: DocumentStoreResource,
    embedder: EmbedderResource,
    vector_index: VectorIndexResource,
    chunking: ChunkingResource,
) -> Iterator[Any]:
    store = documents.store
    keys = run_documents(context)
    target = switch.switch_target(context.run.tags)
    if target is not None:
        yield from switch.reembed(context, store, keys, target, embedder, vector_index.get())
        return
    selected = [stage for stage in STAGES if AssetKey(stage) in context.selected_asset_keys]
    context.log.info(f"{len(keys)} document(s), stages: {', '.join(selected)}")
    registry = store.registry
    registry.projection.start(keys, context.run_id, selected)
    try:
        yield from _ingest(context, store, keys, selected, embedder, vector_index, chunking)
    finally:
        # Stages the run did not get to go back to what they were; status follows.
        registry.projection.finish(keys, context.run_id)


def _ingest(
    context: AssetExecutionContext,
    store: DocumentStore,
    keys: list[str],
    selected: list[str],
    embedder: EmbedderResource,
    vector_index: VectorIndexResource,
    chunking: ChunkingResource,
) -> Iterator[Any]:
    registry = store.registry
    service = DocumentsService(store)
    failed: dict[str, tuple[str, StageError]] = {}
    dropped: set[str] = set()
    # Vectors each indexed document holds, counted once its group is written.
    indexed: dict[str, int] = {}
    canceled = CancelWatch(context)
    # Every materialization names its document's collection, so the UI can filter by it.
    homes = {doc.id: doc.collection for doc in registry.reads.documents(keys)}
    # Each collection's documents are embedded with its own model.
    models = {
        c.name: c.model(embedder.model_name)
        for c in registry.tenancy.collections(set(homes.values()))
    }

    def model_of(key: str) -> Embedder:
        # Loaded lazily: a run that only extracts text never loads a model.
        return embedder.get(models.get(homes.get(key, ""), embedder.model_name))

    def before_slice(model: Embedder) -> None:
        canceled.check()
        model.use_threads(embedder.threads(active_runs(context)))

    for stage in selected:
        live = [key for key in keys if key not in failed and key not in dropped]
        if not live:
            break
        canceled.check()
        if stage == "chunk_embeddings":
            outcomes: dict[str, StageResult | StageError] = {}
            for group in _by_model(live, model_of):
                model = model_of(group[0])
                outcomes |= ingest.chunk_embeddings(
                    store, group, model, before_slice=partial(before_slice, model)
                )
        elif stage == "vector_index":
            outcomes = _index(context, store, service, live, vector_index.get(), indexed)
        else:
            outcomes = {}
            for key in live:
                canceled.check()
                outcomes[key] = _run_stage(stage, store, key, model_of(key), chunking)
        # The stage's documents go to the registry in one transaction, also when the step
        # stops part-way: one per document cost more than the stage for short documents.
        done: dict[str, dict[str, Any]] = {}
        try:
            for key, outcome in outcomes.items():
                if _deleted_meanwhile(store, key, outcome):
                    # Deleted (or superseded) after its run was asked for: before the run started,
                    # or between two of its stages. Nothing is left to do for it.
                    dropped.add(key)
                    release_partition(context.instance, store, key)
                    context.log.info(
                        f"{key} was deleted while its run was queued or running: dropped"
                    )
                    continue
                if isinstance(outcome, StageError):
                    failed[key] = (stage, outcome)
                    context.log.error(f"{key}: {stage} failed [{outcome.code}] {outcome.message}")
                    registry.projection.stage_failed(
                        key, stage, context.run_id, outcome.code, outcome.message
                    )
                    yield AssetObservation(
                        asset_key=stage,
                        partition=key,
                        description=f"[{outcome.code}] {outcome.message}",
                        metadata={"error_code": outcome.code, "error_message": outcome.message},
                    )
                    continue
                yield AssetMaterialization(
                    asset_key=stage,
                    partition=key,
                    metadata={"collection": homes.get(key, ""), **_metadata(outcome)},
                )
                done[key] = outcome.metadata
                yield from _checks(stage, key, outcome, model_of(key), indexed)
        finally:
            if done:
                registry.projection.stages_done(stage, context.run_id, done)
        if stage == "vector_index" and done:
            yield from switch.follow(context, store, list(done), embedder, vector_index.get())

    if failed:
        lines = [
            f"{key}: {stage} [{err.code}] {err.message}" for key, (stage, err) in failed.items()
        ]
        raise Failure(
            description=f"{len(failed)} of {len(keys)} document(s) failed:\n" + "\n".join(lines),
            metadata={
                "failed": MetadataValue.json(
                    {
                        k: {"stage": s, "code": e.code, "message": e.message}
                        for k, (s, e) in failed.items()
                    }
                )
            },
            allow_retries=False,
        )


def _index(
    context: AssetExecutionContext,
    store: DocumentStore,
    service: DocumentsService,
    keys: list[str],
    index: VectorIndex,
    indexed: dict[str, int],
) -> dict[str, StageResult | StageError]:
    """vector_index for the documents, a group per hold of the index-write pool: a DELETE (or
    another run) waits for one group's write, not for the whole batch's."""
    outcomes: dict[str, StageResult | StageError] = {}
    for group in indexing.index_inputs(store, keys):
        ready = [item for item in group if isinstance(item, indexing.IndexInput)]
        outcomes.update(item for item in group if not isinstance(item, indexing.IndexInput))
        if not ready:
            continue
        with index_write_slot(
            context.instance, context.run_id, "ingest_documents", log=context.log.warning
        ):
            written = indexing.vector_index(store, ready, index)
            for key, outcome in written.items():
                if isinstance(outcome, StageResult) and outcome.supersedes:
                    _supersede(context, service, index, key, outcome)
        outcomes.update(written)
        by_index: dict[str, list[str]] = {}
        for key, outcome in written.items():
            if isinstance(outcome, StageResult):
                by_index.setdefault(outcome.metadata["vector_collection"], []).append(key)
        for name, own in by_index.items():
            indexed.update(index.named(name).counts(own))
    return {key: outcomes[key] for key in keys}


def _deleted_meanwhile(store: DocumentStore, key: str, outcome: StageResult | StageError) -> bool:
    """A stage found its input gone because the document was deleted: not a failure."""
    if not isinstance(outcome, StageError) or outcome.code not in (
        "source_missing",
        "missing_upstream",
    ):
        return False
    doc = store.registry.reads.get(key)
    return doc is not None and doc.status == DocumentStatus.deleted


def _by_model(keys: list[str], model_of: Callable[[str], Embedder]) -> list[list[str]]:
    """The documents in groups that share a model, each group in the documents' order."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(model_of(key).model_name, []).append(key)
    return list(groups.values())


def _run_stage(
    stage: str,
    store: DocumentStore,
    key: str,
    model: Embedder,
    chunking: ChunkingResource,
) -> StageResult | StageError:
    try:
        if stage == "raw_document":
            return ingest.raw_document(store, key)
        if stage == "document_text":
            return ingest.document_text(
                store, key, chunking.extraction_timeout_seconds, chunking.ocr(), chunking.limits()
            )
        return ingest.document_chunks(
            store,
            key,
            tokenizer_path=model.tokenizer_path,
            max_tokens=model.max_tokens,
            chunk_size=chunking.chunk_size,
            chunk_overlap=chunking.chunk_overlap,
        )
    except StageError as err:
        return err


def _supersede(
    context: AssetExecutionContext,
    service: DocumentsService,
    index: VectorIndex,
    key: str,
    outcome: StageResult,
) -> None:
    """A new version replaces the old one, now that it is indexed."""
    old = service.supersede(key, index)
    if old is None:
        return
    release_partition(context.instance, service.store, old)
    context.log.info(f"{key} supersedes {old}: removed its vectors, files and partition")
    outcome.metadata["superseded"] = old


def _metadata(outcome: StageResult) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name, value in outcome.metadata.items():
        meta[name] = MetadataValue.path(value) if name == "path" else value
    return meta


def _checks(
    stage: str,
    key: str,
    outcome: StageResult,
    model: Embedder,
    indexed: dict[str, int],
) -> Iterator[Any]:
    meta = outcome.metadata
    if stage == "document_text":
        yield checks.text_is_readable(
            key, meta["chars"], meta["garbled_share"], meta.get("ocr_low_confidence_pages", [])
        )
    elif stage == "chunk_embeddings":
        yield checks.embedding_dimension(key, meta["dimension"], model.dimension, meta["min_norm"])
    elif stage == "vector_index":
        yield checks.vectors_match_chunks(key, indexed[key], meta["chunks"])


# One step, on a warm worker (execution/executor.py): the model is loaded there already, and
# embedding batches span the run's documents.
ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups("ingestion"),
    partitions_def=documents,
    executor_def=warm_executor,
    description="Ingest a range of documents end to end, each with its own outcome.",
)
