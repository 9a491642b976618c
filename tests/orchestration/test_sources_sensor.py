"""sources_sensor's tick syncs a web source with the process's settings (the allow-list, the
interval), evaluated with build_sensor_context against a real instance and a loopback site."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import build_sensor_context
from support.web import Site

from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.sources.web import WebConfig
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration import sensors
from rag_pipeline.orchestration.sensors import sources_tick
from rag_pipeline.settings import get_settings

pytest_plugins = ["support.web"]

PAGE = "html/readability_mercurial.html"


@pytest.fixture()
def environment(
    rag_env: dict[str, str], site: Site, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("RAG_FETCH_ALLOW_HOSTS", f"127.0.0.1:{site.port}")
    monkeypatch.setenv("RAG_WEB_MIN_INTERVAL_SECONDS", "0")
    get_settings.cache_clear()
    yield rag_env
    get_settings.cache_clear()


def test_a_tick_syncs_a_web_source_under_the_fetch_rules(
    environment: dict[str, str], instance, site: Site, corpus: Path
) -> None:
    site.serve("/docs/page.html", (corpus / PAGE).read_bytes())
    store = DocumentStore(Path(environment["RAG_DATA_DIR"]))
    config = WebConfig(urls=(site.url("/docs/page.html"), "http://localhost:9/refused.html"))
    source = store.registry.sources.create("default", "web", config.to_dict())
    index = VectorIndex(
        connect(environment["RAG_CHROMA_URL"]), environment["RAG_CHROMA_COLLECTION"]
    )

    sources_tick(build_sensor_context(instance=instance), store, index)

    synced = store.registry.sources.get(source.id)
    assert synced is not None and synced.last_error is None
    assert synced.last_counts is not None
    assert (synced.last_counts["added"], synced.last_counts["failed"]) == (1, 1)
    [(url, taken)] = store.registry.sources.objects(source.id).items()
    assert url == site.url("/docs/page.html") and taken.document_id is not None
    doc = store.registry.reads.get(taken.document_id)
    assert doc is not None and doc.metadata["source_url"] == url


def test_a_tick_stops_starting_fetches_when_its_time_is_spent(
    environment: dict[str, str], instance, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "WEB_SYNC_SECONDS", 0.0)
    site.serve("/docs/page.html", b"<html><body><p>a page</p></body></html>")
    store = DocumentStore(Path(environment["RAG_DATA_DIR"]))
    config = WebConfig(urls=(site.url("/docs/page.html"),))
    source = store.registry.sources.create("default", "web", config.to_dict())
    index = VectorIndex(
        connect(environment["RAG_CHROMA_URL"]), environment["RAG_CHROMA_COLLECTION"]
    )

    sources_tick(build_sensor_context(instance=instance), store, index)

    synced = store.registry.sources.get(source.id)
    assert synced is not None and synced.last_counts is not None
    assert (synced.last_counts["deferred"], synced.last_counts["added"]) == (1, 0)
    assert site.asked("/docs/page.html") == [], "left for the next tick, not fetched"
