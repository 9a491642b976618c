"""Dependencies, as Annotated aliases: settings, auth, the instance, the store, index, model."""

import hmac
from typing import Annotated

from dagster import DagsterInstance
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag_api.errors import ApiError
from rag_pipeline.core.catalog import Catalog
from rag_pipeline.core.embedding import Embedder, get_embedder
from rag_pipeline.core.index import VectorIndex, connect
from rag_pipeline.core.lexical import LexicalIndex
from rag_pipeline.core.store import DocumentStore
from rag_pipeline.runs import Launcher
from rag_pipeline.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: without RAG_API_KEY no header is needed, and a refusal keeps our error shape.
bearer = HTTPBearer(auto_error=False, description="The key set in RAG_API_KEY")


def require_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if not settings.api_key:
        return
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), settings.api_key.encode()
    ):
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required")


def require_admin(_: Annotated[None, Depends(require_key)]) -> None:
    """Operations: schedules, runs, reprocess and retry. The API key for now; the one place to
    ask for the admin role once keys carry roles."""


def get_instance(request: Request) -> DagsterInstance:
    instance: DagsterInstance = request.app.state.instance
    return instance


def get_launcher(request: Request) -> Launcher:
    """Creates and submits runs; its code location loads on first use."""
    launcher: Launcher = request.app.state.launcher
    return launcher


def get_store(settings: SettingsDep) -> DocumentStore:
    return DocumentStore(settings.data_dir, settings.registry_url or None)


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


def get_model(settings: SettingsDep) -> Embedder:
    model = get_embedder(settings.embedding_model)
    # One thread: a query embeds in ~20 ms instead of ~400 ms on a busy 2-core machine.
    model.use_threads(1)
    return model


def get_lexicon(request: Request) -> LexicalIndex:
    """One in-memory lexical index per app (built by the lifespan), following the store's
    published term files."""
    lexicon: LexicalIndex = request.app.state.lexicon
    return lexicon


def get_catalog(store: Annotated[DocumentStore, Depends(get_store)]) -> Catalog:
    return Catalog(store)


InstanceDep = Annotated[DagsterInstance, Depends(get_instance)]
LauncherDep = Annotated[Launcher, Depends(get_launcher)]
AdminOnly = Depends(require_admin)
StoreDep = Annotated[DocumentStore, Depends(get_store)]
IndexDep = Annotated[VectorIndex, Depends(get_index)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
LexiconDep = Annotated[LexicalIndex, Depends(get_lexicon)]
