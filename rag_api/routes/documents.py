"""Documents: upload, status, progress stream, new versions and delete.

Uploads go into the landing zone and the sensor takes them from there, exactly like files
dropped by people; status is read from the Dagster instance. Nothing here waits for ingestion.
"""

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from dagster import DagsterInstance
from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from rag_api.deps import IndexDep, InstanceDep, SettingsDep, StoreDep
from rag_api.errors import ApiError
from rag_api.schemas import (
    DocumentOut,
    DocumentPage,
    ErrorResponse,
    UploadedDocument,
    UploadResponse,
)
from rag_pipeline.core import landing
from rag_pipeline.core.embedding import max_tokens_for
from rag_pipeline.core.extract import ExtractionError, accept
from rag_pipeline.core.ingest import retire_document
from rag_pipeline.core.store import DocumentStore, document_id, safe_filename, sha256_bytes
from rag_pipeline.partitions import DOCUMENTS, release_partition
from rag_pipeline.resources import ENV_DEFAULTS, api_holder_id, index_write_slot
from rag_pipeline.status import (
    DocumentReport,
    DocumentStatus,
    document_reports,
    find_report,
    rejected_reports,
    waiting_report,
)

router = APIRouter(prefix="/documents", tags=["documents"])

TERMINAL = {
    DocumentStatus.indexed,
    DocumentStatus.failed,
    DocumentStatus.rejected,
    DocumentStatus.deleted,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 404, 413, 415, 422)
}


def _with_errors(extra: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    return {**extra, **_ERRORS}


def _out(report: DocumentReport) -> DocumentOut:
    return DocumentOut.model_validate(report.to_dict())


def _status_url(doc_id: str) -> str:
    return f"/documents/{doc_id}"


def _partitions() -> str:
    return DOCUMENTS


def _check_options(size: int | None, overlap: int | None, model: str) -> None:
    limit = max_tokens_for(model)
    effective_size = size or int(ENV_DEFAULTS["RAG_CHUNK_SIZE"])
    if size is not None and not 1 <= size <= limit:
        raise ApiError(422, "invalid_options", f"chunk_size must be between 1 and {limit}")
    if overlap is not None and not 0 <= overlap < effective_size:
        raise ApiError(
            422, "invalid_options", f"chunk_overlap must be at least 0 and below {effective_size}"
        )


def _read(upload: UploadFile, max_bytes: int) -> tuple[str, bytes]:
    name = safe_filename(upload.filename or "")
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(
            413, "payload_too_large", f"{name} is larger than {max_bytes // (1024 * 1024)} MB"
        )
    try:
        accept(data, name)
    except ExtractionError as exc:
        # Name the file: a request may hold several.
        raise ExtractionError(exc.code, f"{name}: {exc.message}") from exc
    return name, data


# Looking for the same bytes and delivering new ones is one step: two clients uploading
# identical content at the same moment must get one document, not two.
_DELIVERY = threading.Lock()


def _existing(store: DocumentStore, name: str, data: bytes) -> str | None:
    """The document these bytes already are, if any: uploaded, queued or ingested."""
    digest = sha256_bytes(data)
    record = store.find_by_sha256(digest)
    if record is not None:
        return record.document_id
    pending = landing.pending_with_sha256(store, digest)
    if pending is not None:
        return pending
    doc_id = document_id(name, digest)
    return doc_id if landing.pending_upload(store, doc_id) is not None else None


@router.post(
    "",
    status_code=202,
    response_model=UploadResponse,
    responses=_with_errors(
        {200: {"model": UploadResponse, "description": "Every file was a duplicate"}}
    ),
)
def upload_documents(
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    file: Annotated[list[UploadFile], File(description="One or more documents")],
    chunk_size: Annotated[int | None, Form(description="Tokens per chunk")] = None,
    chunk_overlap: Annotated[int | None, Form(description="Tokens of overlap")] = None,
) -> UploadResponse:
    """Accept documents for ingestion; answers at once, with a status URL per document."""
    _check_options(chunk_size, chunk_overlap, settings.embedding_model)
    # Every file is checked before any is written: a request is accepted whole or not at all.
    files = [_read(upload, settings.max_upload_bytes) for upload in file]
    results = []
    with _DELIVERY:
        for name, data in files:
            existing = _existing(store, name, data)
            if existing is not None:
                results.append(_uploaded(existing, name, DocumentStatus.queued, duplicate=True))
                continue
            upload = landing.deliver(
                store, data, name, chunk_size=chunk_size, chunk_overlap=chunk_overlap
            )
            results.append(_uploaded(upload.document_id, name, DocumentStatus.queued))
    if all(r.duplicate for r in results):
        response.status_code = 200
    response.headers["Location"] = results[0].status_url
    return UploadResponse(documents=results)


def _uploaded(
    doc_id: str, name: str, status: DocumentStatus, duplicate: bool = False
) -> UploadedDocument:
    return UploadedDocument(
        id=doc_id,
        filename=name,
        status=status,
        status_url=_status_url(doc_id),
        duplicate=duplicate,
    )


@router.get("", response_model=DocumentPage, responses=_ERRORS)
def list_documents(
    store: StoreDep,
    instance: InstanceDep,
    status: DocumentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentPage:
    """Every document, in the order they arrived; filter by status, page with limit/offset."""
    reports = [*document_reports(instance, store), *rejected_reports(store)]
    if status is not None:
        reports = [r for r in reports if r.status == status]
    page = reports[offset : offset + limit]
    return DocumentPage(
        items=[_out(r) for r in page], total=len(reports), limit=limit, offset=offset
    )


# What document_id() can produce. Anything else never reaches a path in the store: an id like
# `..%2Ftombstones%2Fx` or one holding a NUL byte would read files it must not (or crash).
_DOCUMENT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


def _find(instance: DagsterInstance, store: DocumentStore, doc_id: str) -> DocumentReport:
    if _DOCUMENT_ID.fullmatch(doc_id):
        report = find_report(instance, store, doc_id)
    else:
        # Only a rejected file's stand-in id (`rejected:<landing path>`) looks like this.
        report = next((r for r in rejected_reports(store) if r.id == doc_id), None)
    if report is None:
        raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
    return report


@router.get("/{doc_id}", response_model=DocumentOut, responses=_ERRORS)
def get_document(doc_id: str, store: StoreDep, instance: InstanceDep) -> DocumentOut:
    """A document's status per stage, read from the Dagster instance."""
    return _out(_find(instance, store, doc_id))


def _existing_report(doc_id: str, store: StoreDep, instance: InstanceDep) -> DocumentReport:
    return _find(instance, store, doc_id)


@router.get("/{doc_id}/events", response_class=EventSourceResponse, responses=_ERRORS)
async def document_events(
    doc_id: str,
    first: Annotated[DocumentReport, Depends(_existing_report)],
    store: StoreDep,
    instance: InstanceDep,
    settings: SettingsDep,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: one `status` event per change, closing at a terminal state.

    While nothing changes, a `: keep-alive` comment every RAG_EVENTS_KEEPALIVE_SECONDS keeps
    proxies from closing the connection. A client that goes away stops the stream.
    """
    report = first
    last = None
    idle = 0.0
    while True:
        snapshot = (report.status, tuple((k, s.state) for k, s in report.stages.items()))
        if snapshot != last:
            last = snapshot
            idle = 0.0
            yield ServerSentEvent(event="status", data=_out(report))
        if report.status in TERMINAL:
            return
        await asyncio.sleep(settings.events_poll_seconds)
        idle += settings.events_poll_seconds
        if idle >= settings.events_keepalive_seconds:
            idle = 0.0
            yield ServerSentEvent(comment="keep-alive")
        # Found nowhere is a moment between two steps of a delete (the upload withdrawn, the
        # tombstone not yet written), not a change: the next look sees `deleted`.
        found = await run_in_threadpool(find_report, instance, store, doc_id)
        report = found or report


@router.delete("/{doc_id}", status_code=204, responses=_ERRORS)
def delete_document(
    doc_id: str, store: StoreDep, instance: InstanceDep, index: IndexDep
) -> Response:
    """Remove the document's vectors, artifacts, raw bytes and partition.

    Afterwards its status is `deleted`; uploading the same file again ingests it afresh. A
    partition that a queued or running run names goes once that run is done.
    """
    report = _find(instance, store, doc_id)
    if report.status == DocumentStatus.deleted:
        raise ApiError(404, "not_found", f"document {doc_id!r} is already deleted")
    if report.status == DocumentStatus.rejected:
        landing.forget_rejection(store, doc_id)
        return Response(status_code=204)
    # Withdraw an upload still waiting for the sensor first: once withdrawn it can no longer be
    # registered. One the sensor took already is retired below like any document; if its
    # partition is not there yet, its run drops it.
    landing.cancel_upload(store, doc_id)
    # The API writes the index too, so it takes the same pool slot as the runs do.
    with index_write_slot(instance, api_holder_id(), "delete"):
        retire_document(store, index, doc_id, "deleted through the API")
    # Removed now, or once a queued run that names it is done (it drops the document).
    release_partition(instance, store, doc_id)
    return Response(status_code=204)


@router.put(
    "/{doc_id}",
    status_code=202,
    response_model=UploadResponse,
    responses=_with_errors({200: {"model": UploadResponse, "description": "Same content"}}),
)
def replace_document(
    doc_id: str,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    file: Annotated[UploadFile, File(description="The new version")],
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
) -> UploadResponse:
    """Upload a new version. The old one stays searchable until the new one is indexed."""
    report = _find(instance, store, doc_id)
    if report.status in (DocumentStatus.deleted, DocumentStatus.rejected):
        raise ApiError(404, "not_found", f"document {doc_id!r} is {report.status}")
    _check_options(chunk_size, chunk_overlap, settings.embedding_model)
    name, data = _read(file, settings.max_upload_bytes)
    new_id = document_id(name, sha256_bytes(data))
    if new_id == doc_id or waiting_report(store, new_id) is not None:
        response.status_code = 200
        return UploadResponse(documents=[_uploaded(new_id, name, report.status, duplicate=True)])
    landing.deliver(
        store,
        data,
        name,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        supersedes=doc_id,
    )
    response.headers["Location"] = _status_url(new_id)
    return UploadResponse(documents=[_uploaded(new_id, name, DocumentStatus.queued)])
