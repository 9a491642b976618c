"""Typed exceptions carrying the API's error code: every error body is
`{"error": {"code", "message", "detail"}}` (rag_api/errors.py)."""

from typing import Any

import httpx


class RagError(Exception):
    """An error answer from the API, or no answer at all (`status` None)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "error", detail: Any = None
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class BadRequest(RagError):
    """400."""


class Unauthorized(RagError):
    """401: no key, or a key the API does not know."""


class Forbidden(RagError):
    """403: the key's role may not do this."""


class NotFound(RagError):
    """404: unknown, or in a collection the key may not see."""


class Conflict(RagError):
    """409: e.g. `document_busy`, `not_failed`, `collection_exists`."""


class PayloadTooLarge(RagError):
    """413: over RAG_MAX_UPLOAD_MB."""


class UnsupportedMediaType(RagError):
    """415: a file type the pipeline cannot read."""


class InvalidRequest(RagError):
    """422: e.g. `invalid_request`, `invalid_filter`, `invalid_metadata`, `empty_file`."""


class RateLimited(RagError):
    """429, after the client's retries."""


class Unavailable(RagError):
    """503, after the client's retries: e.g. dense search while the vector index is down."""


class ServerError(RagError):
    """Any other 5xx."""


class ConnectionFailed(RagError):
    """The API could not be reached, after the client's retries."""


class IngestFailed(RagError):
    """A document waited for ended failed, rejected or deleted; `code` is its error code."""

    def __init__(self, document: Any) -> None:
        error = document.error
        super().__init__(
            error.message if error else f"the document ended {document.status}",
            code=error.code if error else str(document.status),
            detail=document,
        )
        self.document = document


class WaitTimeout(RagError, TimeoutError):
    """A wait gave up; `detail` holds the document as last seen."""


_BY_STATUS: dict[int, type[RagError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def error_from(response: httpx.Response) -> RagError:
    """The exception for an error answer, from its body when it has the API's shape."""
    code, message, detail = f"http_{response.status_code}", response.reason_phrase, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code", code))
        message = str(error.get("message", message))
        detail = error.get("detail")
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else RagError
    return kind(message, status=response.status_code, code=code, detail=detail)
