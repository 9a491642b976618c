"""The API under test: its settings and client fixtures, and the helpers its tests share.

Test modules take the fixtures with `pytest_plugins = ["support.api"]`.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from rag_api.main import create_app
from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import Settings
from support.runs import sensor_tick


@pytest.fixture()
def settings(rag_env: dict[str, str]) -> Settings:
    return Settings(
        data_dir=Path(rag_env["RAG_DATA_DIR"]),
        chroma_url=rag_env["RAG_CHROMA_URL"],
        chroma_collection=rag_env["RAG_CHROMA_COLLECTION"],
        embedding_model="hash-384",
        max_upload_mb=0.25,
        events_poll_seconds=0.05,
        # Often enough that a test reading the stream gets control back while nothing changes.
        events_keepalive_seconds=0.2,
    )


@pytest.fixture()
def client(settings: Settings, instance: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings, instance)) as test_client:
        yield test_client


def upload(corpus: Path, rel: str, name: str | None = None) -> tuple[str, tuple[str, bytes]]:
    """One `file` part of a multipart upload, from a corpus file."""
    return ("file", (name or Path(rel).name, (corpus / rel).read_bytes()))


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """The one error shape, with the status and code expected."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def assert_nothing_kept(settings: Settings) -> None:
    """A refused request leaves no bytes in the store and no row in the registry."""
    store = DocumentStore(settings.data_dir)
    kept = [p for p in store.incoming_dir.rglob("*") if p.is_file()]
    assert not kept, kept
    assert store.registry.reads.page()[1] == 0


def take_into_partitions(instance: object, data_dir: Path):  # type: ignore[no-untyped-def]
    """The sensor's tick, with landed files aged past its settle time; no run is started."""
    past = time.time() - 5
    for path in (data_dir / "landing").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    return sensor_tick(instance, str(data_dir))


def land_rejected(instance: object, data_dir: Path, name: str, data: bytes) -> dict:
    """A file dropped into the landing zone that the sensor rejects; returns its document."""
    landing = data_dir / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_bytes(data)
    take_into_partitions(instance, data_dir)
    rejected, _ = DocumentStore(data_dir).registry.reads.page(DocumentStatus.rejected)
    [doc] = [d for d in rejected if d.filename == name]
    assert doc.source_path and Path(doc.source_path).is_file(), doc
    return {"id": doc.id, "status_url": f"/documents/{doc.id}", "source_path": doc.source_path}
