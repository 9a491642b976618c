"""A document's progress as server-sent events: one `status` event per change."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from rag_api.deps import PrincipalDep, SettingsDep, StoreDep, StreamDep, StreamGrant, authenticate
from rag_api.errors import ApiError, error_body
from rag_api.metrics import Metrics
from rag_api.routes.documents.records import TERMINAL, document_out, find_visible, with_errors
from rag_api.schemas import ErrorResponse
from rag_pipeline.core.documents.reports import DocumentReport, find_report
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import Settings

router = APIRouter(prefix="/documents", tags=["documents"])


def _existing_report(doc_id: str, store: StoreDep, principal: PrincipalDep) -> DocumentReport:
    return find_visible(store, doc_id, principal)


@router.get(
    "/{doc_id}/events",
    response_class=EventSourceResponse,
    responses=with_errors({429: {"model": ErrorResponse}}),
)
async def document_events(
    doc_id: str,
    first: Annotated[DocumentReport, Depends(_existing_report)],
    store: StoreDep,
    settings: SettingsDep,
    grant: StreamDep,
    request: Request,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: one `status` event per change, closing at a terminal state.

    While nothing changes, a `: keep-alive` comment every RAG_EVENTS_KEEPALIVE_SECONDS keeps
    proxies from closing the connection. A client that goes away stops the stream. The key is
    checked again every RAG_EVENTS_KEY_RECHECK_SECONDS: once it is revoked (or no longer sees
    the document's collection), one `error` event in the error shape ends the stream. A key
    holds at most RAG_SSE_MAX_STREAMS_PER_KEY streams at once (429 `too_many_streams`).
    """
    metrics: Metrics = request.app.state.metrics
    with metrics.sse_stream():
        report = first
        last = None
        idle = 0.0
        checked = time.monotonic()
        while True:
            snapshot = (report.status, tuple((k, s.state) for k, s in report.stages.items()))
            if snapshot != last:
                last = snapshot
                idle = 0.0
                yield ServerSentEvent(event="status", data=document_out(report))
            if report.status in TERMINAL:
                return
            await asyncio.sleep(settings.events_poll_seconds)
            idle += settings.events_poll_seconds
            if idle >= settings.events_keepalive_seconds:
                idle = 0.0
                yield ServerSentEvent(comment="keep-alive")
            if time.monotonic() - checked >= settings.events_key_recheck_seconds:
                checked = time.monotonic()
                refused = await run_in_threadpool(
                    _refusal, settings, store, grant, report.collection
                )
                if refused is not None:
                    yield ServerSentEvent(
                        event="error", data=error_body(refused.code, refused.message)
                    )
                    return
            # A rejected file forgotten by a delete is found nowhere: nothing more will change.
            found = await run_in_threadpool(find_report, store, doc_id)
            if found is None:
                return
            report = found


def _refusal(
    settings: Settings, store: DocumentStore, grant: StreamGrant, collection: str
) -> ApiError | None:
    """Why a stream's key may no longer follow it (revoked, or no longer over its
    collection), or None."""
    try:
        principal = authenticate(settings, store, grant.token)
    except ApiError as exc:
        return exc
    if not principal.sees(collection):
        return ApiError(404, "not_found", "the document is no longer visible to this key")
    return None
