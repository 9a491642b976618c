"""Dependencies, as Annotated aliases: settings, auth, the instance, the store, index, model."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from dagster import DagsterInstance
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag_api.errors import ApiError
from rag_api.streams import StreamSlots
from rag_pipeline.core.redact import redact
from rag_pipeline.core.registry import Role
from rag_pipeline.core.retrieval.facets import Facets
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.stages.embedders import Embedder, get_embedder
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.core.tenancy.api_keys import (
    KeysService,
    Principal,
    Unauthenticated,
)
from rag_pipeline.orchestration.runs.run_requests import RunSubmitter
from rag_pipeline.settings import Settings, get_settings

log = logging.getLogger("rag_api")

SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: an open API needs no header, and a refusal keeps our error shape.
bearer = HTTPBearer(auto_error=False, description="RAG_API_KEY, or a key made with POST /keys")


def get_store(settings: SettingsDep) -> DocumentStore:
    return DocumentStore(settings.data_dir, settings.registry_url or None)


StoreDep = Annotated[DocumentStore, Depends(get_store)]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    return credentials.credentials if credentials is not None else None


TokenDep = Annotated[str | None, Depends(bearer_token)]


def authenticate(settings: Settings, store: DocumentStore, token: str | None) -> Principal:
    """Who a request with this token acts as (see `KeysService.principal`), or 401."""
    try:
        return KeysService(store.registry).principal(token, settings.api_key, settings.open_access)
    except Unauthenticated as exc:
        raise ApiError(401, exc.code, exc.message) from exc


def require_key(
    settings: SettingsDep,
    store: StoreDep,
    token: TokenDep,
) -> Principal:
    """Who the request acts as. RAG_API_KEY is an admin over every collection; a stored key
    has its role and collections. Without a valid key the request is refused, unless
    RAG_OPEN_ACCESS is on and no key exists at all: 401 `no_keys` then says how to make one."""
    return authenticate(settings, store, token)


PrincipalDep = Annotated[Principal, Depends(require_key)]


@dataclass(frozen=True)
class StreamGrant:
    """A stream's slot among its key's (RAG_SSE_MAX_STREAMS_PER_KEY), held until it ends,
    and what the stream checks its key again with."""

    principal: Principal
    token: str | None


def stream_slot(
    request: Request, settings: SettingsDep, principal: PrincipalDep, token: TokenDep
) -> Iterator[StreamGrant]:
    """A dependency: one of the key's stream slots for the length of the response, or 429."""
    slots: StreamSlots = request.app.state.streams
    # RAG_API_KEY and open access never hold at once (open access needs no key at all).
    holder = principal.key_id or ""
    if not slots.take(holder, settings.sse_max_streams_per_key):
        raise ApiError(
            429,
            "too_many_streams",
            f"this key holds {settings.sse_max_streams_per_key} open event streams, the most "
            "allowed (RAG_SSE_MAX_STREAMS_PER_KEY): close one first",
        )
    try:
        yield StreamGrant(principal, token)
    finally:
        slots.give_back(holder)


StreamDep = Annotated[StreamGrant, Depends(stream_slot)]


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


INDEX_UNAVAILABLE = "the vector index (Chroma) is unavailable"


def index_unavailable(exc: Exception) -> ApiError:
    """The 503 for a vector index that failed: a clean message for the client, the detail
    (secrets masked) in the server's log."""
    log.warning("vector index unavailable: %s", redact(f"{type(exc).__name__}: {exc}"))
    return ApiError(503, "index_unavailable", f"{INDEX_UNAVAILABLE}; try again shortly")


def open_index(settings: Settings) -> VectorIndex:
    try:
        return VectorIndex(connect(settings.chroma_url), settings.chroma_collection)
    except Exception as exc:
        raise index_unavailable(exc) from exc


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
