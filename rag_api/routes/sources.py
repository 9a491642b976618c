"""Sources of a collection: buckets and web sites kept in step with its documents. Admin keys
only.

A bucket source's configuration names where to look and which environment variables hold its
credentials; no secret passes through the API or reaches the registry. A web source's pages
are fetched under the rules of a fetch by URL.
"""

import os
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from rag_api.deps import AdminDep, IndexDep, InstanceDep, SettingsDep, StoreDep
from rag_api.errors import ApiError
from rag_api.schemas import ErrorResponse
from rag_api.source_schemas import (
    S3SourceIn,
    S3SourceOut,
    SourceIn,
    SourceOut,
    SyncCounts,
    SyncOut,
    WebSourceOut,
)
from rag_pipeline.core.registry import CollectionNotFound, Source
from rag_pipeline.core.sources.s3 import Bucket, S3Config, SourceError
from rag_pipeline.core.sources.web import WebConfig
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.sources import opener, source_sync

router = APIRouter(prefix="/collections/{name}/sources", tags=["sources"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422, 502)
}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _out(source: Source) -> S3SourceOut | WebSourceOut:
    shared: dict[str, Any] = {
        "id": source.id,
        "collection": source.collection,
        "created_at": _iso(source.created_at) or "",
        "last_sync_at": _iso(source.last_sync_at),
        "last_counts": SyncCounts(**source.last_counts) if source.last_counts else None,
        "last_error": source.last_error,
    }
    if source.type == "web":
        return WebSourceOut(type="web", **shared, **WebConfig.of(source.config).to_dict())
    return S3SourceOut(type="s3", **shared, **S3Config.of(source.config).to_dict())


def _find(store: DocumentStore, name: str, source_id: str) -> Source:
    found = store.registry.sources.get(source_id)
    if found is None or found.collection != name:
        raise ApiError(404, "not_found", f"collection {name!r} has no source {source_id!r}")
    return found


@router.post("", status_code=201, response_model=SourceOut, responses=_ERRORS)
def create_source(
    name: str, body: SourceIn, response: Response, store: StoreDep, _: AdminDep
) -> S3SourceOut | WebSourceOut:
    """A new source of the collection; the sources sensor syncs it from its next tick.

    A bucket is listed once first (one key at most): a source that cannot be read as
    configured (no such bucket, credentials missing or refused, endpoint down) is refused
    with 422 `source_unreachable` and the store's own words, rather than failing every sync
    after it. A web source's URLs are checked as URLs (http or https, no user name); what
    they reach is checked at each fetch of each sync."""
    config: S3Config | WebConfig
    if isinstance(body, S3SourceIn):
        config = S3Config.of(body.model_dump(exclude={"type"}))
    else:
        config = WebConfig.of(body.model_dump(exclude={"type"}))
    if store.registry.tenancy.collection(name) is None:
        raise CollectionNotFound(name)
    if isinstance(config, S3Config):
        try:
            Bucket(config, os.environ, timeout_s=10.0).probe()
        except SourceError as exc:
            raise ApiError(422, "source_unreachable", str(exc)) from None
    created = store.registry.sources.create(name, body.type, config.to_dict())
    response.headers["Location"] = f"/collections/{name}/sources/{created.id}"
    return _out(created)


@router.get("", response_model=list[SourceOut], responses=_ERRORS)
def list_sources(name: str, store: StoreDep, _: AdminDep) -> list[S3SourceOut | WebSourceOut]:
    """The collection's sources, oldest first, each with how its last sync went."""
    if store.registry.tenancy.collection(name) is None:
        raise CollectionNotFound(name)
    return [_out(s) for s in store.registry.sources.of_collection(name)]


@router.get("/{source_id}", response_model=SourceOut, responses=_ERRORS)
def get_source(
    name: str, source_id: str, store: StoreDep, _: AdminDep
) -> S3SourceOut | WebSourceOut:
    return _out(_find(store, name, source_id))


@router.delete("/{source_id}", status_code=204, responses=_ERRORS)
def delete_source(name: str, source_id: str, store: StoreDep, _: AdminDep) -> Response:
    """Stop syncing the source. Its documents stay, as documents of the collection."""
    _find(store, name, source_id)
    store.registry.sources.delete(source_id)
    return Response(status_code=204)


@router.post("/{source_id}/sync", response_model=SyncOut, responses=_ERRORS)
def sync_source(
    name: str,
    source_id: str,
    settings: SettingsDep,
    store: StoreDep,
    instance: InstanceDep,
    index: IndexDep,
    _: AdminDep,
) -> SyncOut:
    """Sync the source now: its new and changed objects or pages are registered (and ingested
    by the next runs), its removed ones retired. 409 while another sync of it runs; 502 when
    the store (or a web source's sitemap) could not be read, with what was done before in
    `detail`."""
    source = _find(store, name, source_id)
    syncer = source_sync(instance, store, index, settings)
    report = syncer.sync(source, opener(source, settings))
    out = SyncOut(source=source.id, documents=report.documents, **report.counts())
    if report.error is not None:
        raise ApiError(502, "source_unreachable", report.error, out.model_dump())
    return out
