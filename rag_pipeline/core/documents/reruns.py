"""Running documents again without an upload (reprocess, retry), batched as new documents are
(`batching`). `DocumentsService` holds a `Reruns` as `service.reruns`."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag_pipeline.core.documents.batching import batches
from rag_pipeline.core.documents.errors import DocumentBusy, DocumentNotFound, NotFailed
from rag_pipeline.core.registry import STAGES, Document, DocumentStatus, Registry, StageState

# Failures a retry cannot change: the same bytes fail the same way (there is no OCR yet for a
# PDF without a text layer). A retry leaves them alone unless asked to include them.
PERMANENT_ERRORS = ("password_required", "no_text_layer", "unsupported_type", "empty_file")


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
    """The verbs that run documents again, over the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def get(self, doc_id: str) -> Document:
        found = self.registry.reads.get(doc_id)
        if found is None:
            raise DocumentNotFound(doc_id)
        return found

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
