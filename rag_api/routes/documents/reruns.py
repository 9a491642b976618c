"""Running documents again without an upload: `POST /documents/{id}/reprocess`,
`POST /documents/retry` and `POST /documents/{id}/retry` (admin keys only)."""

from fastapi import APIRouter, Response

from rag_api.deps import AdminOnly, SettingsDep, StoreDep, SubmitterDep
from rag_api.routes.documents.records import DOCUMENT_ERRORS, status_url, with_errors
from rag_api.schemas import (
    ErrorResponse,
    Reprocess,
    Reprocessed,
    RetryRequest,
    RetryResponse,
    RetryRun,
)
from rag_pipeline.core.documents.options import check_options
from rag_pipeline.core.documents.reruns import Rerun
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.orchestration.runs.run_requests import DocumentRuns

router = APIRouter(prefix="/documents", tags=["documents"])


@router.post(
    "/retry",
    status_code=202,
    response_model=RetryResponse,
    responses=DOCUMENT_ERRORS,
    dependencies=[AdminOnly],
)
def retry_documents(
    request: RetryRequest, settings: SettingsDep, store: StoreDep, submitter: SubmitterDep
) -> RetryResponse:
    """Run failed documents again, each from the stage where it stopped, in batched runs.

    Failures the same bytes will repeat (password_required, no_text_layer, unsupported_type,
    empty_file) are left alone unless `include_permanent`. Each document reads `queued` with
    its run. Filters that match nothing answer 202 with no runs.
    """
    retried = DocumentsService(store).reruns.retry(
        DocumentRuns(submitter),
        budget_bytes=settings.run_budget_bytes,
        max_docs=settings.max_docs_per_run,
        error_code=request.error_code,
        collection=request.collection,
        include_permanent=request.include_permanent,
        limit=request.limit,
    )
    return RetryResponse(
        documents=retried.document_ids,
        runs=[
            RetryRun(
                run_id=rerun.run_id,
                documents=rerun.document_ids,
                first_stage=rerun.first_stage,
                run_url=f"/runs/{rerun.run_id}",
            )
            for rerun in retried.runs
        ],
        skipped_permanent=retried.skipped_permanent,
    )


@router.post(
    "/{doc_id}/retry",
    status_code=202,
    response_model=Reprocessed,
    responses=with_errors({409: {"model": ErrorResponse}}),
    dependencies=[AdminOnly],
)
def retry_document(
    doc_id: str, response: Response, store: StoreDep, submitter: SubmitterDep
) -> Reprocessed:
    """Run one failed document again, from the stage where it stopped, even for a failure
    the same bytes are likely to repeat (it is asked for by name).

    Its status reads `queued` with the run. A document that has not failed is 409:
    `document_busy` while a run is queued or running for it, `not_failed` otherwise.
    """
    rerun = DocumentsService(store).reruns.retry_one(doc_id, DocumentRuns(submitter))
    return _rerun_of(doc_id, rerun, response)


def _rerun_of(doc_id: str, rerun: Rerun, response: Response) -> Reprocessed:
    response.headers["Location"] = status_url(doc_id)
    return Reprocessed(
        id=doc_id,
        run_id=rerun.run_id,
        first_stage=rerun.first_stage,
        status_url=status_url(doc_id),
        run_url=f"/runs/{rerun.run_id}",
    )


@router.post(
    "/{doc_id}/reprocess",
    status_code=202,
    response_model=Reprocessed,
    responses=with_errors({409: {"model": ErrorResponse}}),
    dependencies=[AdminOnly],
)
def reprocess_document(
    doc_id: str,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    submitter: SubmitterDep,
    options: Reprocess | None = None,
) -> Reprocessed:
    """Run a document again without uploading it: from its chunks with new chunk options,
    else from its text (after an extractor or settings change).

    Its current chunks stay searchable until the new ones are indexed; its status reads
    `queued`, then `processing`, with the new run. A document a run is queued or running for
    is 409.
    """
    service = DocumentsService(store)
    doc = service.get(doc_id)
    size = options.chunk_size if options else None
    overlap = options.chunk_overlap if options else None
    if doc.live:
        check_options(
            size,
            overlap,
            settings.chunk_defaults(),
            store.registry.tenancy.collection(doc.collection),
            doc,
        )
    rerun = service.reruns.reprocess(
        doc_id, DocumentRuns(submitter), chunk_size=size, chunk_overlap=overlap
    )
    return _rerun_of(doc_id, rerun, response)
