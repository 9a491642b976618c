"""POST /documents/retry without a daemon: which failed documents it takes, the batched runs it
asks for, and a run over documents that are not consecutive partitions, executed in process as
the warm worker would. The daemon's part is in
tests/orchestration/maintenance/test_operations_daemon.py."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey
from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.runs import definitions, ingest_landed

from rag_api.main import create_app
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import DOCUMENT_IDS_TAG
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

FILES = [
    "text/uns_norwich-city.txt",
    "markdown/haystack_sample.md",
    "markdown/uns_codeblock.md",
    "text/chardet_windows-1252_dutch.txt",
    "markdown/plumber_README.md",
]


@pytest.fixture()
def small_runs(settings: Settings, instance: object) -> Iterator[TestClient]:
    """The API with runs of at most two documents."""
    with TestClient(create_app(settings.model_copy(update={"max_docs_per_run": 2}), instance)) as c:
        yield c


def _ingest(client, instance, settings, corpus: Path, files: list[str]) -> list[str]:
    ids = [
        client.post("/documents", files=[upload(corpus, rel)]).json()["documents"][0]["id"]
        for rel in files
    ]
    ingest_landed(instance, str(settings.data_dir))
    return ids


def _fail(settings, doc_ids: list[str], stage: str, code: str = "run_failed") -> None:
    """What the reconciler records for documents whose run died."""
    registry = DocumentStore(settings.data_dir).registry
    for doc_id in doc_ids:
        registry.projection.stage_failed(
            doc_id, stage, "dead-run", code, "the run's worker was lost"
        )


def test_failed_documents_run_again_in_batches_from_where_they_stopped(
    small_runs, instance, settings, corpus: Path
) -> None:
    ids = _ingest(small_runs, instance, settings, corpus, FILES)
    [locked] = _ingest(small_runs, instance, settings, corpus, ["pdf_problem/uns_password.pdf"])
    assert small_runs.get(f"/documents/{locked}").json()["error"]["code"] == "password_required"
    # ids[1] stays indexed: the others are not consecutive partitions.
    embed, text = [ids[0], ids[2], ids[3]], [ids[4]]
    _fail(settings, embed, "chunk_embeddings")
    _fail(settings, text, "document_text", "extraction_timeout")

    asked = small_runs.post("/documents/retry", json={})

    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert sorted(body["documents"]) == sorted(embed + text)
    assert body["skipped_permanent"] == 1
    runs = {tuple(r["documents"]): r for r in body["runs"]}
    # Three from the embeddings in runs of at most two, one from the text: three runs.
    assert sorted(runs) == sorted([(ids[0], ids[2]), (ids[3],), (ids[4],)])
    assert runs[(ids[4],)]["first_stage"] == "document_text"
    first = instance.get_run_by_id(runs[(ids[0], ids[2])]["run_id"])
    # A range (Dagster runs stages on partitions by range) with the documents it takes.
    assert first.tags[DOCUMENT_IDS_TAG] == f"{ids[0]},{ids[2]}"
    assert first.tags["dagster/asset_partition_range_start"] == ids[0]
    assert first.tags["dagster/asset_partition_range_end"] == ids[2]
    assert first.asset_selection == {AssetKey("chunk_embeddings"), AssetKey("vector_index")}
    for doc_id in embed + text:
        report = small_runs.get(f"/documents/{doc_id}").json()
        assert report["status"] == "queued"
    # Nothing left to retry but the permanent failure.
    again = small_runs.post("/documents/retry", json={}).json()
    assert (again["documents"], again["runs"], again["skipped_permanent"]) == ([], [], 1)

    # The run executes its two documents by name, and not the one between them.
    job = definitions().resolve_job_def("ingest_job")
    result = job.execute_in_process(
        instance=instance, tags=first.tags, asset_selection=list(first.asset_selection)
    )
    assert result.success
    assert [small_runs.get(f"/documents/{i}").json()["status"] for i in ids[:3]] == [
        "indexed",
        "indexed",
        "indexed",
    ]
    between = small_runs.get(f"/documents/{ids[1]}").json()
    assert result.run_id not in between["run_ids"]
    # The event log says the run was planned for the two it took, not for the one between.
    storage = instance.event_log_storage
    attempts = storage.get_latest_asset_partition_materialization_attempts_without_materializations(
        AssetKey("vector_index")
    )
    assert ids[1] not in attempts


def test_filters_and_permanent_failures(client, instance, settings, corpus: Path) -> None:
    ids = _ingest(client, instance, settings, corpus, FILES[:2])
    [locked] = _ingest(client, instance, settings, corpus, ["pdf_problem/uns_password.pdf"])
    _fail(settings, [ids[0]], "vector_index")

    by_code = client.post("/documents/retry", json={"error_code": "password_required"}).json()
    assert (by_code["documents"], by_code["skipped_permanent"]) == ([], 1)
    elsewhere = client.post("/documents/retry", json={"collection": "nope"}).json()
    assert (elsewhere["documents"], elsewhere["skipped_permanent"]) == ([], 0)

    everything = client.post("/documents/retry", json={"include_permanent": True}).json()
    assert sorted(everything["documents"]) == sorted([ids[0], locked])
    assert everything["skipped_permanent"] == 0
    stages = {r["documents"][0]: r["first_stage"] for r in everything["runs"]}
    assert stages == {ids[0]: "vector_index", locked: "document_text"}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "indexed"},
        {"limit": 0},
        {"limit": 10**12},
        {"error_code": "x" * 65},
        {"include_permanent": "yes"},
        {"everything": True},
    ],
)
def test_invalid_filters_are_422(client, body: dict) -> None:
    assert_error(client.post("/documents/retry", json=body), 422, "invalid_request")
