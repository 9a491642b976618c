"""Collections: create, list, read, change and delete them, and upload into one.

Managing collections takes an admin key; reading them, any key that may see them; uploading
into one, a writer's. A collection the key may not see is not found, like a missing one.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from rag_api.deps import (
    AdminDep,
    IndexDep,
    InstanceDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
    WriterDep,
)
from rag_api.errors import ApiError
from rag_api.routes.documents.records import (
    METADATA_HELP,
    UPLOAD_RESPONSES,
    accept_uploads,
    visible_collection,
)
from rag_api.schemas import (
    CollectionIn,
    CollectionOut,
    CollectionPatch,
    ErrorResponse,
    ModelSwitchOut,
    SwitchFailureOut,
    UploadResponse,
)
from rag_pipeline.core.documents.options import check_options
from rag_pipeline.core.registry import Collection, CollectionNotFound
from rag_pipeline.core.registry.switches import SwitchProgress
from rag_pipeline.core.stages.embedders import ModelUnavailable
from rag_pipeline.core.tenancy.collection_service import CollectionsService
from rag_pipeline.orchestration.partitions import DagsterPartitions
from rag_pipeline.orchestration.resources import api_holder_id
from rag_pipeline.orchestration.runs import switches

router = APIRouter(prefix="/collections", tags=["collections"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _out(
    collection: Collection,
    documents: int,
    by_status: dict[str, int],
    default_model: str,
    switch: SwitchProgress | None = None,
) -> CollectionOut:
    return CollectionOut(
        name=collection.name,
        embedding_model=collection.model(default_model),
        generation=collection.generation,
        model_switch=None
        if switch is None
        else ModelSwitchOut(
            embedding_model=switch.model,
            generation=switch.generation,
            documents_done=switch.done,
            documents_total=switch.total,
            failed=[SwitchFailureOut(**vars(f)) for f in switch.failed],
        ),
        description=collection.description,
        chunk_size=collection.chunk_size,
        chunk_overlap=collection.chunk_overlap,
        documents=documents,
        by_status=by_status,
        created_at=_iso(collection.created_at),
        updated_at=_iso(collection.updated_at),
    )


@router.post("", status_code=201, response_model=CollectionOut, responses=_ERRORS)
def create_collection(
    body: CollectionIn, response: Response, settings: SettingsDep, store: StoreDep, _: AdminDep
) -> CollectionOut:
    """A new collection; its chunk settings are the defaults for its uploads, and its documents
    are embedded with `embedding_model` (one of GET /embedding-models; RAG_EMBEDDING_MODEL by
    default)."""
    model = body.embedding_model or settings.embedding_model
    try:
        defaults = settings.chunk_defaults(model)
    except ModelUnavailable as exc:
        raise ApiError(422, "unknown_embedding_model", str(exc)) from exc
    check_options(body.chunk_size, body.chunk_overlap, defaults)
    created = CollectionsService(store).create(
        body.name, body.description, body.chunk_size, body.chunk_overlap, model
    )
    response.headers["Location"] = f"/collections/{created.name}"
    return _out(created, 0, {}, settings.embedding_model)


@router.get("", response_model=list[CollectionOut], responses=_ERRORS)
def list_collections(
    settings: SettingsDep, store: StoreDep, principal: PrincipalDep
) -> list[CollectionOut]:
    """The collections the key may see, by name, with their number of live documents and
    their documents per status."""
    counts = store.registry.tenancy.live_counts()
    by_status = store.registry.tenancy.status_counts()
    switches = store.registry.switches
    return [
        _out(
            c,
            counts.get(c.name, 0),
            by_status.get(c.name, {}),
            settings.embedding_model,
            switches.progress(c),
        )
        for c in store.registry.tenancy.collections()
        if principal.sees(c.name)
    ]


@router.get("/{name}", response_model=CollectionOut, responses=_ERRORS)
def get_collection(
    name: str, settings: SettingsDep, store: StoreDep, principal: PrincipalDep
) -> CollectionOut:
    found = visible_collection(store, principal, name)
    return _counted(store, found, settings.embedding_model)


def _counted(store: StoreDep, collection: Collection, default_model: str) -> CollectionOut:
    name = collection.name
    by_status = store.registry.tenancy.status_counts().get(name, {})
    live = store.registry.tenancy.live_counts().get(name, 0)
    progress = store.registry.switches.progress(collection)
    return _out(collection, live, by_status, default_model, progress)


_SWITCHED: dict[int | str, dict[str, Any]] = {
    202: {"model": CollectionOut, "description": "A model switch started"}
}


@router.patch("/{name}", response_model=CollectionOut, responses={**_ERRORS, **_SWITCHED})
def change_collection(
    name: str,
    body: CollectionPatch,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    index: IndexDep,
    admin: AdminDep,
) -> CollectionOut:
    """Change the description or chunk defaults (documents already added keep theirs), or the
    embedding model: that answers 202 and re-embeds the collection into a new index generation
    as a backfill, while search serves the current one; the collection swaps to it when every
    document is in it (see `model_switch`). Its current model is a no-op (200); a switch under
    way is 409 `model_switch_pending`; an unknown model 422 `unknown_embedding_model`."""
    current = visible_collection(store, admin, name)
    changes = body.model_dump(exclude_unset=True)
    model = changes.pop("embedding_model", None)
    if model is not None:
        try:
            settings.chunk_defaults(model)
        except ModelUnavailable as exc:
            raise ApiError(422, "unknown_embedding_model", str(exc)) from exc
    if changes.get("description", "") is None:
        raise ApiError(422, "invalid_request", "description cannot be null")
    size = changes.get("chunk_size", current.chunk_size)
    overlap = changes.get("chunk_overlap", current.chunk_overlap)
    check_options(size, overlap, settings.chunk_defaults(current.model(settings.embedding_model)))
    if model is not None and (
        model != current.model(settings.embedding_model) or current.pending_model is not None
    ):
        # First, so a refusal (409 while a switch is under way, whichever model is asked
        # for) changes nothing else.
        switches.start(
            instance, store, name, model, settings.embedding_model, api_holder_id(), index
        )
        response.status_code = 202
    changed = store.registry.tenancy.update_collection(name, **changes) if changes else None
    found = changed or store.registry.tenancy.collection(name)
    if found is None:
        raise CollectionNotFound(name)
    return _counted(store, found, settings.embedding_model)


@router.post(
    "/{name}/model-switch/retry", status_code=202, response_model=CollectionOut, responses=_ERRORS
)
def retry_model_switch(
    name: str,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    index: IndexDep,
    admin: AdminDep,
) -> CollectionOut:
    """Run the model switch again for the documents its new generation still lacks (those the
    new model failed on among them); 409 `no_model_switch` when none is under way."""
    visible_collection(store, admin, name)
    launched = switches.retry(instance, store, name, api_holder_id(), index)
    return _counted(store, launched.collection, settings.embedding_model)


@router.delete("/{name}/model-switch", response_model=CollectionOut, responses=_ERRORS)
def cancel_model_switch(
    name: str,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    index: IndexDep,
    admin: AdminDep,
) -> CollectionOut:
    """Abandon the model switch: its backfill is cancelled and its partial generation removed;
    the collection keeps its model. 409 `no_model_switch` when none is under way."""
    visible_collection(store, admin, name)
    kept = switches.cancel(instance, store, name, api_holder_id(), index)
    return _counted(store, kept, settings.embedding_model)


@router.delete("/{name}", status_code=204, responses=_ERRORS)
def delete_collection(
    name: str, store: StoreDep, instance: InstanceDep, index: IndexDep, _: AdminDep
) -> Response:
    """Delete the collection and every document in it: vectors, artifacts, lexical data,
    registry rows and partitions, its landing folder, and its name on API keys. `default`
    cannot be deleted. Partitions that a queued or running run names go once it is done."""
    partitions = DagsterPartitions(instance, store, api_holder_id())
    CollectionsService(store).delete(name, index, partitions)
    return Response(status_code=204)


@router.post(
    "/{name}/documents", status_code=202, response_model=UploadResponse, responses=UPLOAD_RESPONSES
)
def upload_to_collection(
    name: str,
    response: Response,
    settings: SettingsDep,
    store: StoreDep,
    principal: WriterDep,
    file: Annotated[list[UploadFile], File(description="One or more documents")],
    chunk_size: Annotated[
        int | None, Form(description="Tokens per chunk (default: the collection's)")
    ] = None,
    chunk_overlap: Annotated[
        int | None, Form(description="Tokens of overlap (default: the collection's)")
    ] = None,
    metadata: Annotated[str | None, Form(description=METADATA_HELP)] = None,
) -> UploadResponse:
    """Accept documents into a collection, as `POST /documents` does into `default`."""
    return accept_uploads(
        name,
        file,
        response=response,
        settings=settings,
        store=store,
        principal=principal,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        metadata=metadata,
    )
