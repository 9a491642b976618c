"""The registry's collections and keys on SQLite and PostgreSQL, and the migration that put
every document there was into `default`."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from rag_pipeline.core.registry import CollectionNotFound, Registry, Role, default_url
from rag_pipeline.core.registry.database import _MIGRATIONS
from rag_pipeline.core.retrieval.facets import Facets
from rag_pipeline.core.retrieval.filters import compile_filter


def _url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_url(tmp_path)
    pg = request.getfixturevalue("postgres_db")
    return (
        f"postgresql+psycopg2://{pg['DAGSTER_PG_USER']}:{pg['DAGSTER_PG_PASSWORD']}"
        f"@{pg['DAGSTER_PG_HOST']}:{pg['DAGSTER_PG_PORT']}/{pg['DAGSTER_PG_DB']}"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request, tmp_path)


@pytest.fixture()
def registry(url: str) -> Iterator[Registry]:
    reg = Registry(url)
    yield reg
    reg.close()


def test_documents_from_before_collections_move_into_default(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO documents (id, filename, origin, registered_at, status, updated_at)"
                " VALUES ('old-1', 'old.txt', 'upload', 1.0, 'indexed', 1.0)"
            )
        )
    engine.dispose()

    registry = Registry(url)
    try:
        old = registry.reads.get("old-1")
        assert old is not None and (old.collection, old.metadata) == ("default", {})
        assert [c.name for c in registry.tenancy.collections()] == ["default"]
        assert registry.tenancy.collections()[0].index_suffix == ""
        assert registry.tenancy.live_counts() == {"default": 1}
    finally:
        registry.close()


def _register(reg: Registry, doc_id: str, collection: str = "default", **extra: object):  # type: ignore[no-untyped-def]
    return reg.lifecycle.register(
        doc_id,
        filename=f"{doc_id}.txt",
        sha256=doc_id.ljust(64, "0"),
        size=3,
        origin="upload",
        source_path=f"/in/{doc_id}",
        collection=collection,
        **extra,  # type: ignore[arg-type]
    )


def test_a_collection_takes_documents_until_it_is_removed(registry: Registry) -> None:
    made = registry.tenancy.create_collection("acme", "Acme", chunk_size=64)
    assert made is not None and made.index_suffix.startswith("acme-")
    assert registry.tenancy.create_collection("acme") is None
    _register(registry, "a1", "acme", metadata={"team": "red"})
    assert registry.reads.get("a1").metadata == {"team": "red"}  # type: ignore[union-attr]
    with pytest.raises(CollectionNotFound):
        _register(registry, "z1", "zeta")
    registry.tenancy.add_key("k1", "acme reader", Role.reader, ["acme", "default"], "0" * 64)

    registry.lifecycle.retire("a1", "collection deleted")
    registry.tenancy.remove_collection("acme")

    assert registry.tenancy.collection("acme") is None
    # Its deleted document's row stays until its partition is removed, then goes.
    assert registry.tenancy.collection_document_ids("acme") == ["a1"]
    registry.lifecycle.partition_released("a1")
    assert registry.tenancy.collection_document_ids("acme") == []
    assert registry.tenancy.active_keys()[0].collections == ("default",)
    with pytest.raises(CollectionNotFound):
        _register(registry, "a2", "acme")
    again = registry.tenancy.create_collection("acme")
    assert again is not None and again.index_suffix != made.index_suffix


def test_search_facets_follow_changes_in_the_registry(registry: Registry) -> None:
    registry.tenancy.create_collection("acme")
    _register(registry, "d1", metadata={"team": "red"})
    _register(registry, "a1", "acme", metadata={"team": "red"})
    facets = Facets(registry)
    red = compile_filter({"team": "red"})
    assert facets.select(["default", "acme"], red) == {"default": {"d1"}, "acme": {"a1"}}

    registry.tenancy.set_metadata("d1", {"team": "blue"})
    registry.lifecycle.retire("a1", "deleted")
    _register(registry, "d2", metadata={"team": "red"})

    assert facets.select(["default", "acme"], red) == {"default": {"d2"}, "acme": set()}
    scope = facets.scope(registry.tenancy.collections(["default"]), red, everything=False)
    assert scope.documents == {"d2"}
    [part] = scope.parts
    assert part.excluding == {"d1"} or part.only == {"d2"}
