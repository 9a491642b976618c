"""Prometheus metrics."""

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from rag_api.deps import SettingsDep, StoreDep, TokenDep, authenticate
from rag_api.errors import ApiError
from rag_api.metrics import Metrics
from rag_pipeline.core.registry import Role

router = APIRouter(tags=["system"])


def metrics_access(
    settings: SettingsDep,
    store: StoreDep,
    token: TokenDep,
) -> None:
    """An admin key, unless RAG_METRICS_PUBLIC: the metrics name every collection and count its
    documents, which a key scoped to some collections must never learn."""
    if settings.metrics_public:
        return
    if not authenticate(settings, store, token).may(Role.admin):
        raise ApiError(403, "forbidden", "this needs a key with the admin role")


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(metrics_access)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format: documents by collection and status, stage
    durations and failures, run slots and queue, worker heartbeats, search latency and SSE
    streams. Needs an admin key unless RAG_METRICS_PUBLIC is set."""
    registry: Metrics = request.app.state.metrics
    body = await run_in_threadpool(registry.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
