"""The client's models are its own (it cannot import the service), so they are pinned here
to the API's response schemas: a field added, renamed or made optional on one side fails
until the other follows."""

import pytest
from pydantic import BaseModel

from rag_api import schemas
from rag_api.routes.documents.records import TERMINAL
from rag_client import models
from rag_pipeline.core.registry import DocumentStatus, Role
from rag_pipeline.core.registry.model import StageState
from rag_pipeline.core.retrieval.search import SearchMode
from rag_pipeline.orchestration.runs.run_requests import RunStatus

PAIRS = [
    (schemas.StageOut, models.Stage),
    (schemas.DocumentError, models.DocumentError),
    (schemas.DocumentOut, models.Document),
    (schemas.DocumentPage, models.DocumentPage),
    (schemas.ChunkOut, models.Chunk),
    (schemas.ChunkPage, models.ChunkPage),
    (schemas.UploadedDocument, models.UploadedDocument),
    (schemas.UploadResponse, models.UploadResponse),
    (schemas.Reprocessed, models.Rerun),
    (schemas.RetryRun, models.RetryRun),
    (schemas.RetryResponse, models.RetryResponse),
    (schemas.SearchHit, models.SearchHit),
    (schemas.SearchResponse, models.SearchResponse),
    (schemas.CollectionOut, models.Collection),
    (schemas.ModelSwitchOut, models.ModelSwitch),
    (schemas.SwitchFailureOut, models.SwitchFailure),
    (schemas.EmbeddingModelOut, models.EmbeddingModel),
    (schemas.KeyOut, models.Key),
    (schemas.KeyCreated, models.KeyCreated),
    (schemas.KeyIdentity, models.KeyIdentity),
    (schemas.HealthOut, models.Health),
    (schemas.RunOut, models.Run),
]


def _fields(model: type[BaseModel]) -> dict[str, bool]:
    return {name: info.is_required() for name, info in model.model_fields.items()}


@pytest.mark.parametrize(("api", "client"), PAIRS, ids=[c.__name__ for _, c in PAIRS])
def test_each_model_has_the_schemas_fields(api: type[BaseModel], client: type[BaseModel]) -> None:
    assert _fields(client) == _fields(api)


@pytest.mark.parametrize(
    ("api", "client"),
    [
        (DocumentStatus, models.DocumentStatus),
        (StageState, models.StageState),
        (SearchMode, models.SearchMode),
        (Role, models.Role),
        (RunStatus, models.RunStatus),
    ],
)
def test_each_enum_has_the_apis_values(api: type, client: type) -> None:
    assert sorted(str(v) for v in client) == sorted(str(v) for v in api)


def test_a_wait_ends_where_the_events_stream_does() -> None:
    assert sorted(models.TERMINAL) == sorted(str(s) for s in TERMINAL)
