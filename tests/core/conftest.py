"""Fixtures for the core's tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pipeline.core.store import DocumentStore


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[DocumentStore]:
    """An empty data dir with its landing zone, and its SQLite registry."""
    store = DocumentStore(tmp_path / "data")
    store.landing_dir.mkdir(parents=True)
    yield store
    store.registry.close()
