"""Running documents again without an upload (reprocess, retry), and the checks and batching
that go with it. `DocumentsService` takes these verbs from `Reruns`."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag_pipeline.core.registry import STAGES, Document, DocumentStatus, Registry, StageState


def batches(docs: Sequence[Document], budget_bytes: int, max_docs: int) -> list[list[Document]]:
    """Consecutive documents, in order, grouped until the next one would take the batch over
    the byte budget or the document cap; a document over the budget is a batch of its own."""
    grouped: list[list[Document]] = []
    batch: list[Document] = []
    used = 0
    for doc in docs:
        size = doc.bytes or 0
        if batch and (used + size > budget_bytes or len(batch) >= max_docs):
            grouped.append(batch)
            batch, used = [], 0
        batch.append(doc)
        used += size
    if batch:
        grouped.append(batch)
    return grouped


class DocumentNotFound(LookupError):
    def __init__(self, doc_id: str, why: str = "") -> None:
        super().__init__(f"no document with id {doc_id!r}{why}")
        self.doc_id = doc_id


# Failures a retry cannot change: the same bytes fail the same way (there is no OCR yet for a
# PDF without a text layer). A retry leaves them alone unless asked to include them.
PERMANENT_ERRORS = ("password_required", "no_text_layer", "unsupported_type", "empty_file")


class DocumentBusy(Exception):
    """A document a run is already queued or running for."""

    def __init__(self, doc_id: str, status: str) -> None:
        super().__init__(f"{doc_id} is {status}: wait until its run ends, then try again")
        self.doc_id = doc_id


class NotFailed(Exception):
    """A retry of one document that has not failed."""

    def __init__(self, doc_id: str, status: str) -> None:
        super().__init__(f"{doc_id} is {status}: only a failed document is retried")
        self.doc_id = doc_id


class InvalidOptions(ValueError):
    """Chunk options no chunking can follow."""


def check_options(
    size: int | None,
    overlap: int | None,
    *,
    max_tokens: int,
    base_size: int,
    base_overlap: int,
) -> None:
    """Chunk options as given with a document (None: keep `base_size` / `base_overlap`)."""
    if size is not None and not 1 <= size <= max_tokens:
        raise InvalidOptions(f"chunk_size must be between 1 and {max_tokens}")
    effective_size = size or base_size
    effective_overlap = base_overlap if overlap is None else overlap
    if not 0 <= effective_overlap < effective_size:
        raise InvalidOptions(
            f"chunk_overlap must be at least 0 and below {effective_size}"
            + ("" if overlap is not None else f" (it is {effective_overlap})")
        )


def check_document_options(
    doc: Document | None,
    size: int | None,
    overlap: int | None,
    *,
    max_tokens: int,
    default_size: int,
    default_overlap: int,
) -> None:
    """Chunk options for a new document (`doc` None) or one whose own options they change."""
    own_size = doc.chunk_size if doc is not None else None
    own_overlap = doc.chunk_overlap if doc is not None else None
    check_options(
        size,
        overlap,
        max_tokens=max_tokens,
        base_size=own_size or default_size,
        base_overlap=default_overlap if own_overlap is None else own_overlap,
    )


class Runs(Protocol):
    """Dagster's side of running documents again: a run created, then submitted."""

    def create(self, docs: Sequence[Document], first_stage: str, source: str) -> str: ...

    def submit(self, run_id: str) -> None: ...

    def discard(self, run_id: str) -> None: ...


@dataclass(frozen=True)
class Rerun:
    """A run asked for documents again, from `first_stage` on."""

    run_id: str
    document_ids: list[str]
    first_stage: str


@dataclass(frozen=True)
class Retried:
    runs: list[Rerun]
    # Failed documents the filters matched that failed for good (see PERMANENT_ERRORS).
    skipped_permanent: int

    @property
    def document_ids(self) -> list[str]:
        return [doc_id for rerun in self.runs for doc_id in rerun.document_ids]


def first_stage_to_run(doc: Document, affected: str) -> str:
    """The earlier of the stage a change affects and the document's first unfinished stage."""
    unfinished = next(
        (s for s in STAGES if doc.stages[s].state != StageState.materialized), STAGES[-1]
    )
    return min(affected, unfinished, key=STAGES.index)


class Reruns:
    """The verbs that run documents again; mixed into `DocumentsService`."""

    registry: Registry

    def get(self, doc_id: str) -> Document:
        raise NotImplementedError

    def reprocess(
        self,
        doc_id: str,
        runs: Runs,
        *,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
    ) -> Rerun:
        """Run a document again without uploading it: from its chunks with new chunk options,
        else from its text. Its current chunks stay searchable until the new ones are indexed
        (see `catalog.hold_indexed_chunks`); its status reads `queued` with the new run."""
        doc = self.get(doc_id)
        if not doc.live:
            raise DocumentNotFound(doc_id, f": it is {doc.status}")
        if doc.status in (DocumentStatus.queued, DocumentStatus.processing):
            raise DocumentBusy(doc_id, doc.status)
        options = chunk_size is not None or chunk_overlap is not None
        first = first_stage_to_run(doc, "document_chunks" if options else "document_text")
        [rerun] = self._rerun(
            [[doc]],
            runs,
            first,
            source="reprocess",
            expect=(DocumentStatus.indexed, DocumentStatus.failed),
            options={"chunk_size": chunk_size, "chunk_overlap": chunk_overlap} if options else None,
        )
        if not rerun.document_ids:
            raise DocumentBusy(doc_id, "taken by another request")
        return rerun

    def retry(
        self,
        runs: Runs,
        *,
        budget_bytes: int,
        max_docs: int,
        error_code: str | None = None,
        collection: str | None = None,
        include_permanent: bool = False,
        limit: int = 1000,
    ) -> Retried:
        """Run failed documents again, each from the stage where it stopped, in batched runs
        (by bytes and count, as the sensor batches new documents): one run per batch of
        documents that start at the same stage, never one per document."""
        exclude = () if include_permanent else PERMANENT_ERRORS
        docs, skipped = self.registry.reads.failed(error_code, collection, exclude, limit)
        # A batch's documents start at the same stage and share a collection.
        by_stage: dict[tuple[str, str], list[Document]] = {}
        for doc in docs:
            key = (first_stage_to_run(doc, STAGES[-1]), doc.collection)
            by_stage.setdefault(key, []).append(doc)
        reruns: list[Rerun] = []
        for stage, collection_name in sorted(by_stage, key=lambda k: (STAGES.index(k[0]), k[1])):
            grouped = batches(by_stage[stage, collection_name], budget_bytes, max_docs)
            done = self._rerun(grouped, runs, stage, source="retry", expect=[DocumentStatus.failed])
            reruns.extend(rerun for rerun in done if rerun.document_ids)
        return Retried(reruns, skipped)

    def retry_one(self, doc_id: str, runs: Runs) -> Rerun:
        """Run one failed document again from the stage where it stopped, whatever its
        failure: asked for by name, a permanent one is tried too."""
        doc = self.get(doc_id)
        if not doc.live:
            raise DocumentNotFound(doc_id, f": it is {doc.status}")
        if doc.status in (DocumentStatus.queued, DocumentStatus.processing):
            raise DocumentBusy(doc_id, doc.status)
        if doc.status != DocumentStatus.failed:
            raise NotFailed(doc_id, doc.status)
        first = first_stage_to_run(doc, STAGES[-1])
        [rerun] = self._rerun([[doc]], runs, first, source="retry", expect=[DocumentStatus.failed])
        if not rerun.document_ids:
            raise DocumentBusy(doc_id, "taken by another request")
        return rerun

    def _rerun(
        self,
        batches: Sequence[Sequence[Document]],
        runs: Runs,
        first_stage: str,
        *,
        source: str,
        expect: Sequence[DocumentStatus],
        options: dict[str, int | None] | None = None,
    ) -> list[Rerun]:
        """A run per batch, created first; then, in one transaction, the documents still as
        expected are queued for their batch's run (another request may have taken some);
        then the runs that have documents are submitted and the others forgotten."""
        created = [(runs.create(batch, first_stage, source), batch) for batch in batches]
        try:
            taken = self.registry.lifecycle.requeue(
                {doc.id: run_id for run_id, batch in created for doc in batch},
                expect=expect,
                options=options,
            )
        except BaseException:
            for run_id, _ in created:
                runs.discard(run_id)
            raise
        reruns = []
        for run_id, batch in created:
            ids = [doc.id for doc in batch if doc.id in taken]
            if ids:
                runs.submit(run_id)
            else:
                runs.discard(run_id)
            reruns.append(Rerun(run_id, ids, first_stage))
        return reruns
