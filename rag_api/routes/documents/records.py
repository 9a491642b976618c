"""Documents: upload, status, progress stream, new versions and delete.

Thin: each route parses, calls the documents service or reads the registry, and shapes the
answer. Uploads are registered at once and the sensor picks them up, like files dropped into
the landing zone. Nothing here waits for ingestion.
"""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from rag_api.deps import (
    FacetsDep,
    IndexDep,
    InstanceDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
    WriterDep,
)
from rag_api.errors import ApiError
from rag_api.schemas import (
    FILTER_HELP,
    ChunkOut,
    ChunkPage,
    DocumentOut,
    DocumentPage,
    ErrorResponse,
    MetadataPatch,
    UploadedDocument,
    UploadResponse,
)
from rag_pipeline.core.documents import metadata as meta
from rag_pipeline.core.documents.errors import DocumentNotFound
from rag_pipeline.core.documents.options import check_options
from rag_pipeline.core.documents.reports import (
    DocumentReport,
    DocumentStatus,
    find_report,
    report,
)
from rag_pipeline.core.documents.service import Accepted, DocumentsService
from rag_pipeline.core.registry import DEFAULT_COLLECTION, Collection, CollectionNotFound
from rag_pipeline.core.retrieval.filters import compile_filter
from rag_pipeline.core.stages.extract import ExtractionError, accept
from rag_pipeline.core.storage.catalog import chunk_page
from rag_pipeline.core.storage.data_dir import DocumentStore, safe_filename
from rag_pipeline.core.tenancy.api_keys import Principal
from rag_pipeline.orchestration.partitions import DagsterPartitions, observe_metadata
from rag_pipeline.orchestration.resources import api_holder_id
from rag_pipeline.settings import Settings

router = APIRouter(prefix="/documents", tags=["documents"])

TERMINAL = {
    DocumentStatus.indexed,
    DocumentStatus.failed,
    DocumentStatus.rejected,
    DocumentStatus.deleted,
}
DOCUMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 413, 415, 422)
}
METADATA_HELP = (
    "a JSON object of strings, numbers, booleans and lists of strings, for every file of "
    "the request (RAG_METADATA_MAX_BYTES at most)"
)


def with_errors(extra: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    return {**extra, **DOCUMENT_ERRORS}


def document_out(report: DocumentReport) -> DocumentOut:
    return DocumentOut.model_validate(report, from_attributes=True)


def status_url(doc_id: str) -> str:
    return f"/documents/{doc_id}"


def _read(upload: UploadFile, settings: Settings) -> tuple[str, bytes, str]:
    """The file's safe name, its bytes and their media type, or the reason it can never be a
    document (every file of a request is read before any is kept)."""
    name = safe_filename(upload.filename or "")
    max_bytes = settings.max_upload_bytes
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(
            413, "payload_too_large", f"{name} is larger than {max_bytes // (1024 * 1024)} MB"
        )
    return name, data, admit(name, data, settings)


def admit(name: str, data: bytes, settings: Settings) -> str:
    """The media type of a file's bytes, or ExtractionError naming the file: the checks every
    file passes before it becomes a document."""
    try:
        media_type = accept(data, name, settings.sniff_timeout_seconds)
    except ExtractionError as exc:
        # Name the file: a request may hold several.
        raise ExtractionError(exc.code, f"{name}: {exc.message}") from exc
    return media_type


UPLOAD_RESPONSES = with_errors(
    {200: {"model": UploadResponse, "description": "Every file was a duplicate"}}
)


@router.post("", status_code=202, response_model=UploadResponse, responses=UPLOAD_RESPONSES)
def upload_documents(
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    principal: WriterDep,
    file: Annotated[list[UploadFile], File(description="One or more documents")],
    chunk_size: Annotated[int | None, Form(description="Tokens per chunk")] = None,
    chunk_overlap: Annotated[int | None, Form(description="Tokens of overlap")] = None,
    metadata: Annotated[str | None, Form(description=METADATA_HELP)] = None,
) -> UploadResponse:
    """Accept documents into the `default` collection; answers at once, with a status URL
    per document."""
    return accept_uploads(
        DEFAULT_COLLECTION,
        file,
        response=response,
        settings=settings,
        store=store,
        principal=principal,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        metadata=metadata,
    )


def visible_collection(store: DocumentStore, principal: Principal, name: str) -> Collection:
    """A collection the key may see; any other is not found."""
    found = store.registry.tenancy.collection(name) if principal.sees(name) else None
    if found is None:
        raise CollectionNotFound(name)
    return found


def accept_uploads(
    collection: str,
    uploads: list[UploadFile],
    *,
    response: Response,
    settings: Settings,
    store: DocumentStore,
    principal: Principal,
    chunk_size: int | None,
    chunk_overlap: int | None,
    metadata: str | None,
) -> UploadResponse:
    """Register a request's files in a collection: all of them or, if any is refused, none."""
    home = visible_collection(store, principal, collection)
    check_options(chunk_size, chunk_overlap, settings.chunk_defaults(), home)
    labels = meta.parse(metadata, settings.metadata_max_bytes) if metadata else {}
    # Every file is checked before any is written: a request is accepted whole or not at all.
    files = [_read(upload, settings) for upload in uploads]
    return register(
        collection,
        files,
        labels,
        response=response,
        settings=settings,
        store=store,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )


def register(
    collection: str,
    files: list[tuple[str, bytes, str]],
    labels: dict[str, Any],
    *,
    response: Response,
    settings: Settings,
    store: DocumentStore,
    chunk_size: int | None,
    chunk_overlap: int | None,
) -> UploadResponse:
    """Admitted files (name, bytes, media type) as documents of the collection: 202 with a
    status URL each, or 200 when every one was a duplicate."""
    service = DocumentsService(store, settings.metadata_max_bytes)
    results = [
        _uploaded(
            name,
            service.upload(
                data,
                name,
                collection=collection,
                metadata=labels,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                media_type=media_type,
            ),
        )
        for name, data, media_type in files
    ]
    if all(r.duplicate for r in results):
        response.status_code = 200
    response.headers["Location"] = results[0].status_url
    return UploadResponse(documents=results)


def _uploaded(name: str, accepted: Accepted) -> UploadedDocument:
    doc = accepted.document
    return UploadedDocument(
        id=doc.id,
        filename=name,
        status=doc.status,
        status_url=status_url(doc.id),
        duplicate=accepted.duplicate,
    )


@router.get("", response_model=DocumentPage, responses=DOCUMENT_ERRORS)
def list_documents(
    store: StoreDep,
    principal: PrincipalDep,
    facets: FacetsDep,
    status: DocumentStatus | None = None,
    collection: Annotated[
        list[str] | None,
        Query(description="only these collections (repeatable); default: all the key may read"),
    ] = None,
    filter: Annotated[
        str | None, Query(description=f"JSON, as search takes it: {FILTER_HELP}")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentPage:
    """Every document, in the order they arrived; filter by collection, status and metadata,
    page with limit/offset.

    Deleted documents are listed only with `?status=deleted`. A metadata `filter` is the
    language of search and, like search, sees live documents only (queued, processing,
    indexed, failed): deleted and rejected ones never match it."""
    where = compile_filter(filter)
    scope = scoped_collections(store, principal, collection)
    if where is not None:
        names = (
            scope if scope is not None else [c.name for c in store.registry.tenancy.collections()]
        )
        ids, total = facets.page(names, where, status, limit=limit, offset=offset)
        docs = store.registry.reads.documents(ids)
    else:
        docs, total = store.registry.reads.page(
            status, limit=limit, offset=offset, include_deleted=False, collections=scope
        )
    return DocumentPage(
        items=[document_out(report(doc)) for doc in docs], total=total, limit=limit, offset=offset
    )


def scoped_collections(
    store: DocumentStore, principal: Principal, wanted: list[str] | None
) -> list[str] | None:
    """The collections a request names, each one the key may see (any other is not found);
    without names, all the key may see (None: every one)."""
    if wanted:
        for name in wanted:
            visible_collection(store, principal, name)
        return list(dict.fromkeys(wanted))
    if principal.collections is None:
        return None
    return sorted(principal.collections)


def find_visible(store: DocumentStore, doc_id: str, principal: Principal) -> DocumentReport:
    """A document the key may see: another collection's is not found, like a missing one."""
    found = find_report(store, doc_id)
    if found is None or not principal.sees(found.collection):
        raise DocumentNotFound(doc_id)
    return found


@router.get("/{doc_id}", response_model=DocumentOut, responses=DOCUMENT_ERRORS)
def get_document(doc_id: str, store: StoreDep, principal: PrincipalDep) -> DocumentOut:
    """A document's status per stage, from the registry's projection of the Dagster runs."""
    return document_out(find_visible(store, doc_id, principal))


@router.get("/{doc_id}/chunks", response_model=ChunkPage, responses=DOCUMENT_ERRORS)
def document_chunks(
    doc_id: str,
    store: StoreDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChunkPage:
    """The document's chunks as they were embedded, in order, from its chunks artifact: each
    with its page(s), character offsets, token count and text. None before it is chunked."""
    find_visible(store, doc_id, principal)
    chunks, total = chunk_page(store, doc_id, offset, limit)
    return ChunkPage(
        document_id=doc_id,
        items=[ChunkOut.model_validate(chunk, from_attributes=True) for chunk in chunks],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.delete("/{doc_id}", status_code=204, responses=DOCUMENT_ERRORS)
def delete_document(
    doc_id: str, store: StoreDep, instance: InstanceDep, index: IndexDep, principal: WriterDep
) -> Response:
    """Remove the document's vectors, artifacts, raw bytes and partition.

    Afterwards its status is `deleted`; uploading the same file again ingests it afresh. A
    partition that a queued or running run names goes once that run is done. A rejected
    file is forgotten.
    """
    find_visible(store, doc_id, principal)
    partitions = DagsterPartitions(instance, store, api_holder_id())
    DocumentsService(store).delete(doc_id, index, partitions)
    return Response(status_code=204)


@router.put(
    "/{doc_id}",
    status_code=202,
    response_model=UploadResponse,
    responses=with_errors({200: {"model": UploadResponse, "description": "Same content"}}),
)
def replace_document(
    doc_id: str,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    principal: WriterDep,
    file: Annotated[UploadFile, File(description="The new version")],
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    metadata: Annotated[
        str | None, Form(description=METADATA_HELP + "; default: the old version's")
    ] = None,
) -> UploadResponse:
    """Upload a new version, in the same collection. The old one stays searchable until the
    new one is indexed."""
    service = DocumentsService(store, settings.metadata_max_bytes)
    found = find_visible(store, doc_id, principal)
    if found.status in (DocumentStatus.deleted, DocumentStatus.rejected):
        raise DocumentNotFound(doc_id, f": it is {found.status}")
    check_options(
        chunk_size,
        chunk_overlap,
        settings.chunk_defaults(),
        store.registry.tenancy.collection(found.collection),
    )
    labels = meta.parse(metadata, settings.metadata_max_bytes) if metadata else None
    name, data, media_type = _read(file, settings)
    accepted = service.replace(
        doc_id,
        data,
        name,
        metadata=labels,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        media_type=media_type,
    )
    if accepted.duplicate:
        response.status_code = 200
    else:
        response.headers["Location"] = status_url(accepted.document.id)
    return UploadResponse(documents=[_uploaded(name, accepted)])


@router.patch("/{doc_id}", response_model=DocumentOut, responses=DOCUMENT_ERRORS)
def change_metadata(
    doc_id: str,
    change: MetadataPatch,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    principal: WriterDep,
) -> DocumentOut:
    """Change a document's metadata without re-embedding it: search filters by the new
    metadata from the next query, and the Dagster UI shows it as an observation of the
    document's `raw_document` partition."""
    find_visible(store, doc_id, principal)
    doc = DocumentsService(store, settings.metadata_max_bytes).set_metadata(doc_id, change.metadata)
    observe_metadata(instance, doc.id, doc.collection, doc.metadata)
    return document_out(report(doc))
