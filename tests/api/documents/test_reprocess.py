"""POST /documents/{id}/reprocess without a daemon: the run it asks for, the document's status,
what is refused, and search while the new chunks wait for their vectors.

The stages run here in process, as the warm worker would; the daemon's part is in
tests/orchestration/maintenance/test_operations_daemon.py.
"""

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterRunStatus
from support.api import assert_error, upload
from support.runs import ingest_landed, materialize

from rag_pipeline.core.storage.data_dir import DocumentStore

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"
QUERY = "Norwich City Football Club"


def _indexed(client, instance, settings, corpus: Path) -> dict:
    doc = client.post("/documents", files=[upload(corpus, NORWICH)]).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))
    report = client.get(doc["status_url"]).json()
    assert report["status"] == "indexed"
    return report


def _hits(client) -> list[dict]:
    response = client.get("/search", params={"q": QUERY, "k": 50, "mode": "lexical"})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_new_chunk_options_run_from_the_chunks_and_search_cites_the_indexed_ones_meanwhile(
    client, instance, settings, corpus: Path
) -> None:
    before = _indexed(client, instance, settings, corpus)
    doc_id = before["id"]

    asked = client.post(f"/documents/{doc_id}/reprocess", json={"chunk_size": 40})

    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["first_stage"] == "document_chunks"
    assert asked.headers["Location"] == body["status_url"] == f"/documents/{doc_id}"
    run = instance.get_run_by_id(body["run_id"])
    assert run.status == DagsterRunStatus.QUEUED
    assert run.tags["dagster/partition"] == doc_id and run.tags["rag/source"] == "reprocess"
    assert run.asset_selection == {
        AssetKey(s) for s in ("document_chunks", "chunk_embeddings", "vector_index")
    }
    queued = client.get(f"/documents/{doc_id}").json()
    assert queued["status"] == "queued" and body["run_id"] in queued["run_ids"]
    # One run at a time per document.
    assert_error(client.post(f"/documents/{doc_id}/reprocess"), 409, "document_busy")

    # As the worker would: new chunks and embeddings first. Search still cites the chunks the
    # index holds vectors for.
    cited = {(h["chunk_no"], h["text"]) for h in _hits(client)}
    assert materialize(instance, [doc_id], ["document_chunks", "chunk_embeddings"]).success
    assert {(h["chunk_no"], h["text"]) for h in _hits(client)} == cited
    # Then the index: the new chunks are what search finds.
    assert materialize(instance, [doc_id], ["vector_index"]).success
    after = client.get(f"/documents/{doc_id}").json()
    assert after["status"] == "indexed"
    assert after["chunks"] > before["chunks"]
    assert after["stages"]["document_chunks"]["metadata"]["chunk_size"] == 40
    hits = _hits(client)
    assert {h["document_id"] for h in hits} == {doc_id}
    assert max(h["chunk_no"] for h in hits) >= before["chunks"]
    store = DocumentStore(settings.data_dir)
    assert not store.artifact_path("indexed_chunks", doc_id).exists()


def test_reprocess_without_options_runs_from_the_text(
    client, instance, settings, corpus: Path
) -> None:
    doc_id = _indexed(client, instance, settings, corpus)["id"]
    body = client.post(f"/documents/{doc_id}/reprocess").json()
    assert body["first_stage"] == "document_text"
    run = instance.get_run_by_id(body["run_id"])
    assert AssetKey("raw_document") not in run.asset_selection
    assert AssetKey("document_text") in run.asset_selection


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 10**9}, "chunk_size"),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        # Below the document's own chunk size (the settings' 200), or not.
        ({"chunk_overlap": 200}, "chunk_overlap"),
        ({"chunk_size": 20}, "chunk_overlap"),
    ],
)
def test_invalid_options_are_422_and_change_nothing(
    client, instance, settings, corpus: Path, options: dict, why: str
) -> None:
    before = _indexed(client, instance, settings, corpus)
    refused = assert_error(
        client.post(f"/documents/{before['id']}/reprocess", json=options), 422, "invalid_options"
    )
    assert why in refused["error"]["message"]
    assert client.get(f"/documents/{before['id']}").json() == before
    assert instance.get_runs_count() == 1, "only the first ingestion ran"


def test_reprocess_of_what_is_not_a_live_document_is_404(
    client, instance, settings, corpus: Path
) -> None:
    assert_error(client.post("/documents/nope-123/reprocess"), 404, "not_found")
    doc = client.post("/documents", files=[upload(corpus, NORWICH)]).json()["documents"][0]
    assert client.delete(doc["status_url"]).status_code == 204
    assert_error(client.post(f"{doc['status_url']}/reprocess"), 404, "not_found")
    assert_error(
        client.post("/documents/nope-123/reprocess", json={"chunk_sise": 3}),
        422,
        "invalid_request",
    )
