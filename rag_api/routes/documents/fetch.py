"""Documents by URL: a writer names a page or file, the API fetches it under the fetch rules
(core/sources/fetch.py) and takes its bytes in as an upload of them.

The fetch runs in the threadpool, as uploads do (these are sync routes), so a slow remote never
holds the event loop; RAG_FETCH_TIMEOUT_SECONDS bounds it.
"""

from typing import Any

from fastapi import APIRouter, Response

from rag_api.deps import SettingsDep, StoreDep, WriterDep
from rag_api.routes.documents.records import UPLOAD_RESPONSES, admit, register, visible_collection
from rag_api.schemas import ErrorResponse, UploadResponse, UrlIn
from rag_pipeline.core.documents import metadata as meta
from rag_pipeline.core.documents.options import check_options
from rag_pipeline.core.registry import DEFAULT_COLLECTION
from rag_pipeline.core.sources.fetch import fetch
from rag_pipeline.core.storage.data_dir import DocumentStore, safe_filename
from rag_pipeline.core.tenancy.api_keys import Principal
from rag_pipeline.settings import Settings

router = APIRouter(tags=["documents"])

FETCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **UPLOAD_RESPONSES,
    **{code: {"model": ErrorResponse} for code in (502, 504)},
}


@router.post(
    "/documents/url", status_code=202, response_model=UploadResponse, responses=FETCH_RESPONSES
)
def fetch_document(
    body: UrlIn, response: Response, settings: SettingsDep, store: StoreDep, principal: WriterDep
) -> UploadResponse:
    """Fetch a page or file by URL into the `default` collection, as an upload of its bytes."""
    return accept_url(DEFAULT_COLLECTION, body, response, settings, store, principal)


@router.post(
    "/collections/{name}/documents/url",
    status_code=202,
    response_model=UploadResponse,
    responses=FETCH_RESPONSES,
)
def fetch_to_collection(
    name: str,
    body: UrlIn,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    principal: WriterDep,
) -> UploadResponse:
    """Fetch a page or file by URL into a collection, as an upload of its bytes.

    Private, loopback, link-local and other non-global addresses are refused (422
    `fetch_refused`) unless RAG_FETCH_ALLOW_HOSTS names the host; every redirect is checked
    again. Larger than the upload limit: 413; the remote's failure: 502 `fetch_failed`;
    longer than RAG_FETCH_TIMEOUT_SECONDS: 504 `fetch_timeout`. The document's metadata
    records `source_url`, the URL fetched after redirects."""
    return accept_url(name, body, response, settings, store, principal)


def accept_url(
    collection: str,
    body: UrlIn,
    response: Response,
    settings: Settings,
    store: DocumentStore,
    principal: Principal,
) -> UploadResponse:
    """Everything the request alone decides is checked before anything is fetched."""
    home = visible_collection(store, principal, collection)
    check_options(body.chunk_size, body.chunk_overlap, settings.chunk_defaults(), home)
    labels = meta.validate(body.metadata or {}, settings.metadata_max_bytes)
    fetched = fetch(body.url, settings.fetch_policy())
    name = safe_filename(fetched.filename)
    media_type = admit(name, fetched.data, settings)
    labels = meta.validate({**labels, "source_url": fetched.url}, settings.metadata_max_bytes)
    return register(
        collection,
        [(name, fetched.data, media_type)],
        labels,
        response=response,
        settings=settings,
        store=store,
        chunk_size=body.chunk_size,
        chunk_overlap=body.chunk_overlap,
    )
