"""The FastAPI app: create_app() wires routers, errors, auth and the Dagster instance.

Nothing is read or opened at import; the lifespan opens the instance, the vector index and the
lexical index, and warms the model.
"""

import gc
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from rag_api import errors, ui
from rag_api.deps import get_model, open_index, require_key
from rag_api.errors import ApiError, error_body
from rag_api.mcp import http as mcp_http
from rag_api.mcp.server import build_server
from rag_api.metrics import Metrics
from rag_api.routes import collections, keys, models, search, sources
from rag_api.routes.documents import events, fetch, reruns
from rag_api.routes.documents import records as documents
from rag_api.routes.operations import metrics, runs, schedules, system
from rag_api.streams import StreamSlots
from rag_pipeline.core.retrieval.facets import Facets
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.stages.extract import start_sandbox
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.api_keys import FIRST_KEY_HELP
from rag_pipeline.orchestration.legacy_migration import migrate, needs_migration
from rag_pipeline.orchestration.runs.run_requests import RunSubmitter
from rag_pipeline.settings import Settings, get_settings

log = logging.getLogger("rag_api")


def _warm_up(app: FastAPI, settings: Settings) -> None:
    get_model(settings).embed_query("warm up")
    app.state.lexicon.refresh()
    app.state.facets.refresh()
    # Uploads over 64 KiB are sniffed in the extraction sandbox: start its fork server now
    # (about a second), not on the first such upload, inside that upload's time bound.
    start_sandbox()
    # What start-up built (torch, Dagster, the model, the lexical index) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it. Measured at
    # 100,000 documents: status pages' p99 fell from about 165 ms to the p50's neighbourhood.
    gc.collect()
    gc.freeze()
    app.state.warm = True


def create_app(settings: Settings | None = None, instance: Any = None) -> FastAPI:
    """Build the app; tests pass their own settings and instance."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = instance is None
        if own:
            from dagster import DagsterInstance

            app.state.instance = DagsterInstance.get()
        else:
            app.state.instance = instance
        store = DocumentStore(settings.data_dir, settings.registry_url or None)
        if needs_migration(store):
            migrate(app.state.instance, store)
        try:
            app.state.index = open_index(settings)
        except ApiError:
            # Chroma may come up after the API: search falls back to lexical meanwhile.
            app.state.index = None
        if not settings.api_key and not store.registry.tenancy.any_key():
            if settings.open_access:
                log.warning(
                    "RAG_OPEN_ACCESS is on and no API key exists: the API is open to anyone "
                    "who can reach it until the first key is made (%s)",
                    FIRST_KEY_HELP,
                )
            else:
                log.warning(
                    "no API key exists and RAG_OPEN_ACCESS is off: every request is refused "
                    "until the first key is made (%s)",
                    FIRST_KEY_HELP,
                )
        # Loading the model and the lexical index takes seconds: do it now, off the request path.
        app.state.lexicon = LexicalIndex(DocumentStore(settings.data_dir))
        app.state.submitter = RunSubmitter(app.state.instance)
        app.state.facets = Facets(store.registry)
        app.state.metrics = Metrics(app.state.instance, store, settings.worker_concurrency)
        threading.Thread(target=lambda: _warm_up(app, settings), daemon=True).start()
        try:
            async with mcp_http.running(app.state.mcp):
                yield
        finally:
            app.state.submitter.close()
            if own:
                app.state.instance.dispose()

    app = FastAPI(
        title="rag-ingest",
        summary="Upload documents for RAG ingestion, follow their status, search them.",
        version="0.1.0",
        lifespan=lifespan,
        # ui.install serves both pages from local assets: FastAPI's own load them from a CDN.
        docs_url=None,
        redoc_url=None,
        responses={500: {"description": "never for bad input"}},
    )
    app.dependency_overrides[get_settings] = lambda: settings
    errors.install(app)
    app.state.streams = StreamSlots()

    # The whole request may hold files up to the per-file limit, plus the multipart framing.
    max_body = settings.max_upload_bytes + 1024 * 1024
    # Starlette counts the body as it streams in, so a body sent without Content-Length is
    # bounded too. Not through FastAPI(max_body_size=...): for a declared Content-Length over
    # the limit, Starlette sends its own plain-text 413 in place of the app's answer, which
    # would break the one error shape. The check below answers those first, in that shape.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body)

    @app.middleware("http")
    async def refuse_declared_oversize(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body:
            return JSONResponse(
                error_body(
                    "payload_too_large",
                    f"the request is larger than {max_body / 2**20:g} MB",
                ),
                status_code=413,
            )
        return await call_next(request)

    protected = [Depends(require_key)]
    # Before the documents router: POST /documents/retry is not a document id.
    app.include_router(reruns.router, dependencies=protected)
    app.include_router(documents.router, dependencies=protected)
    app.include_router(fetch.router, dependencies=protected)
    app.include_router(events.router, dependencies=protected)
    app.include_router(collections.router, dependencies=protected)
    app.include_router(sources.router, dependencies=protected)
    app.include_router(keys.router, dependencies=protected)
    app.include_router(search.router, dependencies=protected)
    app.include_router(models.router, dependencies=protected)
    app.include_router(system.router)
    app.include_router(metrics.router)
    app.include_router(schedules.router)
    app.include_router(runs.router)
    app.state.mcp = build_server(app, settings)
    mcp_http.mount(app, app.state.mcp)
    ui.install(app)
    return app


def limit_threads() -> None:
    """One thread each for torch and BLAS: a query embeds in ~20 ms instead of ~400 ms."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
