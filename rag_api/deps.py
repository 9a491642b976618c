"""Dependencies, as Annotated aliases: settings, auth, the instance, the store, index, model."""

import hmac
from collections.abc import Callable
from typing import Annotated

from dagster import DagsterInstance
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag_api.errors import ApiError
from rag_pipeline.core.registry import Role
from rag_pipeline.core.retrieval.facets import Facets
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.stages.embedders import Embedder, get_embedder
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.api_keys import EVERYTHING, KeysService, Principal, principal_of
from rag_pipeline.orchestration.run_requests import RunSubmitter
from rag_pipeline.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: an open API needs no header, and a refusal keeps our error shape.
bearer = HTTPBearer(auto_error=False, description="RAG_API_KEY, or a key made with POST /keys")


def get_store(settings: SettingsDep) -> DocumentStore:
    return DocumentStore(settings.data_dir, settings.registry_url or None)


StoreDep = Annotated[DocumentStore, Depends(get_store)]


def require_key(
    settings: SettingsDep,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who the request acts as. RAG_API_KEY is an admin over every collection; a stored key
    has its role and collections; with neither configured, the API is open."""
    token = credentials.credentials if credentials is not None else None
    if (
        token
        and settings.api_key
        and hmac.compare_digest(token.encode(), settings.api_key.encode())
    ):
        return EVERYTHING
    if token:
        key = KeysService(store.registry).authenticate(token)
        if key is not None:
            return principal_of(key)
    if not settings.api_key and not store.registry.tenancy.any_key():
        return EVERYTHING
    raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required")


PrincipalDep = Annotated[Principal, Depends(require_key)]


def require_role(role: Role) -> Callable[[Principal], Principal]:
    """A dependency: the request's key must have at least this role (403 otherwise, whatever
    the target, so a refusal says nothing about what exists)."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.may(role):
            raise ApiError(403, "forbidden", f"this needs a key with the {role} role")
        return principal

    return check


WriterDep = Annotated[Principal, Depends(require_role(Role.writer))]
AdminDep = Annotated[Principal, Depends(require_role(Role.admin))]


def get_instance(request: Request) -> DagsterInstance:
    instance: DagsterInstance = request.app.state.instance
    return instance


def get_submitter(request: Request) -> RunSubmitter:
    """Creates and submits runs; its code location loads on first use."""
    submitter: RunSubmitter = request.app.state.submitter
    return submitter


def open_index(settings: Settings) -> VectorIndex:
    try:
        return VectorIndex(connect(settings.chroma_url), settings.chroma_collection)
    except Exception as exc:
        raise ApiError(503, "index_unavailable", f"the vector index is unreachable: {exc}") from exc


def get_index(request: Request, settings: SettingsDep) -> VectorIndex:
    """The index the lifespan opened; tried again here only while Chroma was down at start-up,
    so the API heals when Chroma comes up without a restart."""
    index: VectorIndex | None = request.app.state.index
    if index is None:
        index = request.app.state.index = open_index(settings)
    return index


def get_model(settings: SettingsDep, name: str | None = None) -> Embedder:
    """The model named (a collection's), or the configured default."""
    model = get_embedder(name or settings.embedding_model, endpoints=settings.endpoint_specs())
    # One thread: a query embeds in ~20 ms instead of ~400 ms on a busy 2-core machine.
    model.use_threads(1)
    return model


def get_lexicon(request: Request) -> LexicalIndex:
    """One in-memory lexical index per app (built by the lifespan), following the store's
    published term files."""
    lexicon: LexicalIndex = request.app.state.lexicon
    return lexicon


def get_facets(request: Request) -> Facets:
    """What search scopes and filters by, per app, following the registry."""
    facets: Facets = request.app.state.facets
    return facets


def get_catalog(store: StoreDep) -> Catalog:
    return Catalog(store)


InstanceDep = Annotated[DagsterInstance, Depends(get_instance)]
SubmitterDep = Annotated[RunSubmitter, Depends(get_submitter)]
# Operations (schedules, runs, reprocess, retry): admin keys only.
AdminOnly = Depends(require_role(Role.admin))
IndexDep = Annotated[VectorIndex, Depends(get_index)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
LexiconDep = Annotated[LexicalIndex, Depends(get_lexicon)]
FacetsDep = Annotated[Facets, Depends(get_facets)]
