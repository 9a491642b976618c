"""RAG_API_KEY: what needs the key, what answers without it, and how OpenAPI shows it."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, assert_nothing_kept, upload
from support.sse import open_events

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

KEY = "s3cret-key"
GOOD = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture()
def locked(settings: Settings, instance: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"api_key": KEY}), instance)) as c:
        yield c


def test_a_key_protects_everything_but_health(locked, settings, corpus: Path) -> None:
    doc = [upload(corpus, "markdown/haystack_sample.md")]
    new = [upload(corpus, "markdown/plumber_README.md")]
    requests = [
        ("GET", "/documents", {}),
        ("GET", "/search?q=x", {}),
        ("GET", "/schedules", {}),
        ("GET", "/documents/x", {}),
        ("GET", "/documents/x/events", {}),
        ("DELETE", "/documents/x", {}),
        ("POST", "/documents", {"files": doc}),
        ("PUT", "/documents/x", {"files": new}),
    ]
    for method, path, body in requests:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
            refused = locked.request(method, path, headers=headers, **body)
            assert_error(refused, 401, "unauthorized")
            assert refused.headers["www-authenticate"] == "Bearer"
    assert_nothing_kept(settings)
    assert locked.get("/health").status_code == 200

    # With the key, every one of them reaches its route.
    assert locked.get("/documents", headers=GOOD).status_code == 200
    for method, path, body in requests[3:6] + requests[7:]:
        assert_error(locked.request(method, path, headers=GOOD, **body), 404, "not_found")
    posted = locked.post("/documents", files=doc, headers=GOOD)
    assert posted.status_code == 202, posted.text
    status_url = posted.json()["documents"][0]["status_url"]
    assert locked.put(status_url, files=new, headers=GOOD).status_code == 202
    locked.headers.update(GOOD)
    with open_events(locked, status_url) as stream:
        assert stream.next_status()["status"] == "queued"


def test_the_api_description_needs_no_key(locked) -> None:
    """/docs is a page whose browser fetches /openapi.json without a key; neither holds data."""
    schema = locked.get("/openapi.json")
    assert schema.status_code == 200
    for page in ("/docs", "/redoc"):
        answer = locked.get(page)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]

    paths = schema.json()["paths"]
    assert schema.json()["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "RAG_API_KEY, or a key made with POST /keys",
    }
    security = {
        f"{method.upper()} {path}": operation.get("security")
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    assert security.pop("GET /health") is None
    assert security and all(s == [{"HTTPBearer": []}] for s in security.values()), security


def test_openapi_documents_every_route(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/documents",
        "/documents/{doc_id}",
        "/documents/{doc_id}/events",
        "/search",
        "/schedules",
        "/health",
    } <= set(schema["paths"])
    statuses = schema["components"]["schemas"]["DocumentStatus"]["enum"]
    assert statuses == ["queued", "processing", "indexed", "failed", "rejected", "deleted"]
