"""The registry under test, on SQLite and on PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pipeline.core.registry import Registry, default_url


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param == "sqlite":
        url = default_url(tmp_path)
    else:
        pg = request.getfixturevalue("postgres_db")
        url = (
            f"postgresql+psycopg2://{pg['DAGSTER_PG_USER']}:{pg['DAGSTER_PG_PASSWORD']}"
            f"@{pg['DAGSTER_PG_HOST']}:{pg['DAGSTER_PG_PORT']}/{pg['DAGSTER_PG_DB']}"
        )
    reg = Registry(url)
    yield reg
    reg.close()
