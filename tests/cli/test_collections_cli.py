"""`rag-pipeline` with collections: add into one with metadata, status, search with a filter,
SQL over one collection, and a backfill of exactly one collection's partitions."""

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from support.runs import copy_corpus, materialize, run_cli, wait_for

from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.storage.data_dir import DocumentStore

NORWICH = "text/uns_norwich-city.txt"
PLUMBER = "markdown/plumber_README.md"
HAYSTACK = "markdown/haystack_sample.md"


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def _add(path: Path, *options: str) -> str:
    code, out = run_cli(["add", str(path), *options])
    assert code == 0, out
    return out.strip()


def test_the_command_line_works_within_a_collection(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    store.registry.tenancy.create_collection("acme", chunk_size=64)
    files = tmp_path / "in"
    red = _add(
        copy_corpus(corpus, NORWICH, files), "--collection", "acme", "--metadata", '{"team": "red"}'
    )
    blue = _add(
        copy_corpus(corpus, PLUMBER, files),
        "--collection",
        "acme",
        "--metadata",
        '{"team": "blue"}',
    )
    plain = _add(copy_corpus(corpus, HAYSTACK, files))
    assert red.startswith("acme--") and not plain.startswith("acme--")
    assert materialize(instance, [red, blue, plain]).success

    code, out = run_cli(["status", "--collection", "acme", "--json"])
    listed = _lines(out)
    assert code == 0 and {d["id"] for d in listed} == {red, blue}
    assert {d["collection"] for d in listed} == {"acme"}
    assert listed[0]["stages"]["document_chunks"]["metadata"]["chunk_size"] == 64
    assert run_cli(["status", plain, "--collection", "acme"])[0] == 1

    for mode in ("lexical", "hybrid", "dense"):
        code, out = run_cli(
            [
                "search",
                "Norwich City pdfplumber",
                "--mode",
                mode,
                "--k",
                "50",
                "--json",
                "--collection",
                "acme",
                "--filter",
                '{"team": "blue"}',
            ]
        )
        assert code == 0 and {h["document_id"] for h in _lines(out)} == {blue}, mode
    code, out = run_cli(
        ["search", "Haystack", "--mode", "lexical", "--json", "--collection", "default"]
    )
    assert {h["document_id"] for h in _lines(out)} == {plain}
    assert run_cli(["search", "x", "--filter", "{bad"])[0] == 1
    assert run_cli(["search", "x", "--collection", "nope"])[0] == 1
    assert run_cli(["add", str(files / "haystack_sample.md"), "--collection", "nope"])[0] == 1
    assert run_cli(["add", str(files / "haystack_sample.md"), "--metadata", "[1]"])[0] == 1

    code, out = run_cli(
        [
            "sql",
            "SELECT DISTINCT document_id FROM chunks ORDER BY 1",
            "--json",
            "--collection",
            "acme",
        ]
    )
    assert code == 0 and [r["document_id"] for r in _lines(out)] == sorted([red, blue])
    code, out = run_cli(["sql", "SELECT count(*) AS n FROM documents", "--json"])
    assert _lines(out) == [{"n": 3}]


def test_a_backfill_covers_exactly_one_collections_partitions(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    store.registry.tenancy.create_collection("acme")
    files = tmp_path / "in"
    first = _add(copy_corpus(corpus, NORWICH, files), "--collection", "acme")
    _add(copy_corpus(corpus, HAYSTACK, files))
    second = _add(copy_corpus(corpus, PLUMBER, files), "--collection", "acme")

    code, out = run_cli(
        [
            "backfill",
            "--collection",
            "acme",
            "--stages",
            "document_chunks",
            "chunk_embeddings",
            "vector_index",
        ]
    )

    assert code == 0, out
    [backfill] = instance.get_backfills()
    assert backfill.backfill_id in out
    assert backfill.tags["rag/collection"] == "acme"
    targets = list(backfill.asset_backfill_data.target_subset.iterate_asset_partitions())
    assert {t.partition_key for t in targets} == {first, second}  # not the default document
    assert {t.asset_key.to_user_string() for t in targets} == {
        "document_chunks",
        "chunk_embeddings",
        "vector_index",
    }
    assert run_cli(["backfill", "--collection", "nope"])[0] == 1
    store.registry.tenancy.create_collection("empty")
    assert run_cli(["backfill", "--collection", "empty"])[0] == 1


@pytest.mark.e2e
@pytest.mark.parametrize("daemon_env", [{"RAG_EMBEDDING_MODEL": "hash-384"}], indirect=True)
def test_the_daemon_runs_a_collections_backfill_and_nothing_else(
    daemon, daemon_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    """`rag-pipeline backfill --collection`, run by the real backfill daemon on the warm worker:
    the collection's documents end indexed, in runs tagged with it; another collection's
    document waiting between them is left alone."""
    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    store = DocumentStore(daemon_env["RAG_DATA_DIR"])
    store.registry.tenancy.create_collection("acme")
    files = tmp_path / "in"
    first = _add(copy_corpus(corpus, NORWICH, files), "--collection", "acme")
    other = _add(copy_corpus(corpus, HAYSTACK, files))
    second = _add(copy_corpus(corpus, PLUMBER, files), "--collection", "acme")

    code, out = run_cli(["backfill", "--collection", "acme"])
    assert code == 0, out

    def indexed() -> bool:
        return all(
            store.registry.reads.get(key).status == DocumentStatus.indexed
            for key in (first, second)
        )

    wait_for(indexed, 240, "the collection's documents indexed", tmp_path / "daemon.log")
    assert store.registry.reads.get(other).status != DocumentStatus.indexed
    with DagsterInstance.get() as instance:
        [backfill] = instance.get_backfills()
        backfill_runs = RunsFilter(tags={"dagster/backfill": backfill.backfill_id})

        # A document is indexed when its last stage commits, a moment before its run records
        # its end: wait for the runs to end, then ask how.
        def ended() -> list | None:  # type: ignore[type-arg]
            found = instance.get_runs(backfill_runs)
            return found if found and all(r.is_finished for r in found) else None

        runs = wait_for(ended, 60, "the backfill's runs ended", tmp_path / "worker.log")
    assert runs and all(run.tags.get("rag/collection") == "acme" for run in runs)
    assert all(run.status == DagsterRunStatus.SUCCESS for run in runs)
