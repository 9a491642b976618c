"""One error shape for every error: {"error": {"code", "message", "detail"}}.

Domain exceptions are mapped to HTTP here, once; routes raise `ApiError`, let a domain
exception through, or let validation fail.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag_pipeline.core.documents.errors import (
    DocumentBusy,
    DocumentNotFound,
    InvalidOptions,
    NotFailed,
)
from rag_pipeline.core.documents.metadata import MetadataError
from rag_pipeline.core.registry.switches import SwitchConflict
from rag_pipeline.core.retrieval.filters import FilterError
from rag_pipeline.core.sources.fetch import FetchFailed, FetchRefused, FetchTimeout, FetchTooLarge
from rag_pipeline.core.sources.s3 import SourceError
from rag_pipeline.core.sources.sync import SourceBusy
from rag_pipeline.core.stages.extract import ExtractionError
from rag_pipeline.core.tenancy.api_keys import InvalidKey
from rag_pipeline.core.tenancy.collection_service import (
    CollectionExists,
    CollectionNotFound,
    CollectionProtected,
    InvalidCollectionName,
)
from rag_pipeline.orchestration.schedules import InvalidSchedule


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    502: "bad_gateway",
    503: "unavailable",
}

# Domain errors with one status and code each.
_DOMAIN: dict[type[Exception], tuple[int, str]] = {
    CollectionNotFound: (404, "not_found"),
    CollectionExists: (409, "collection_exists"),
    CollectionProtected: (409, "collection_protected"),
    InvalidCollectionName: (422, "invalid_collection_name"),
    MetadataError: (422, "invalid_metadata"),
    FilterError: (422, "invalid_filter"),
    InvalidKey: (422, "invalid_key"),
    NotFailed: (409, "not_failed"),
    SourceError: (422, "invalid_source"),
    SourceBusy: (409, "sync_in_progress"),
    FetchRefused: (422, "fetch_refused"),
    FetchTooLarge: (413, "payload_too_large"),
    FetchFailed: (502, "fetch_failed"),
    FetchTimeout: (504, "fetch_timeout"),
}

# A file refused at the door: nothing in it to index is 422, a type we cannot read is 415.
_EXTRACTION_STATUS = {"empty_file": 422, "unsupported_type": 415}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.detail), status_code=exc.status, headers=headers
        )

    @app.exception_handler(ExtractionError)
    async def _refused(_: Request, exc: ExtractionError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=_EXTRACTION_STATUS.get(exc.code, 422)
        )

    @app.exception_handler(InvalidSchedule)
    async def _invalid_schedule(_: Request, exc: InvalidSchedule) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=422)

    @app.exception_handler(DocumentBusy)
    async def _busy(_: Request, exc: DocumentBusy) -> JSONResponse:
        return JSONResponse(error_body("document_busy", str(exc)), status_code=409)

    @app.exception_handler(InvalidOptions)
    async def _invalid_options(_: Request, exc: InvalidOptions) -> JSONResponse:
        return JSONResponse(error_body("invalid_options", str(exc)), status_code=422)

    @app.exception_handler(SwitchConflict)
    async def _switch(_: Request, exc: SwitchConflict) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=409)

    @app.exception_handler(DocumentNotFound)
    async def _not_found(_: Request, exc: DocumentNotFound) -> JSONResponse:
        return JSONResponse(error_body("not_found", str(exc)), status_code=404)

    async def _domain(_: Request, exc: Exception) -> JSONResponse:
        status, code = _DOMAIN[type(exc)]
        return JSONResponse(error_body(code, str(exc)), status_code=status)

    for kind in _DOMAIN:
        app.add_exception_handler(kind, _domain)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is not valid", detail), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
