"""Reading, listing, deleting and replacing documents through the API."""

from pathlib import Path

import pytest
from support.api import assert_error, land_rejected, take_into_partitions, upload
from support.runs import ingest_landed

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import DOCUMENTS

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"


def test_unknown_documents_are_404(client) -> None:
    assert_error(client.get("/documents/nope-123"), 404, "not_found")
    assert_error(client.get("/documents/nope-123/events"), 404, "not_found")
    assert_error(client.delete("/documents/nope-123"), 404, "not_found")


def test_listing_filters_and_pages(client, instance, settings, corpus: Path) -> None:
    client.post(
        "/documents",
        files=[
            upload(corpus, "markdown/haystack_sample.md"),
            upload(corpus, "markdown/uns_codeblock.md"),
        ],
    )
    client.post("/documents", files=[upload(corpus, "pdf_problem/uns_password.pdf")])
    ingest_landed(instance, str(settings.data_dir))

    everything = client.get("/documents").json()
    assert everything["total"] == 3
    failed = client.get("/documents", params={"status": "failed"}).json()
    assert [d["filename"] for d in failed["items"]] == ["uns_password.pdf"]
    assert failed["items"][0]["error"]["code"] == "password_required"
    page = client.get("/documents", params={"limit": 1, "offset": 1}).json()
    assert len(page["items"]) == 1 and page["items"][0]["id"] == everything["items"][1]["id"]
    assert_error(client.get("/documents", params={"status": "bogus"}), 422, "invalid_request")


def test_delete_then_upload_again_ingests_afresh(client, instance, settings, corpus: Path) -> None:
    doc = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(doc["status_url"]).json()["status"] == "indexed"

    assert client.delete(doc["status_url"]).status_code == 204

    gone = client.get(doc["status_url"]).json()
    assert gone["status"] == "deleted"
    for mode in ("hybrid", "dense", "lexical"):
        hits = client.get("/search", params={"q": "Norwich City", "mode": mode}).json()
        assert all(h["document_id"] != doc["id"] for h in hits["results"]), mode
    assert_error(client.delete(doc["status_url"]), 404, "not_found")

    again = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")])
    assert again.status_code == 202 and again.json()["documents"][0]["id"] == doc["id"]
    assert client.get(doc["status_url"]).json()["status"] == "queued", "old history is not reused"
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(doc["status_url"]).json()["status"] == "indexed"


def test_deleting_a_rejected_file_forgets_it(client, instance, settings, corpus: Path) -> None:
    empty = (corpus / "text/uns_empty.txt").read_bytes()
    doc = land_rejected(instance, settings.data_dir, "empty.txt", empty)
    assert client.get(doc["status_url"]).json()["status"] == "rejected"

    assert client.delete(doc["status_url"]).status_code == 204

    assert not Path(doc["source_path"]).exists(), "its file in landing/rejected is gone"
    rejected_dir = settings.data_dir / "landing" / "rejected"
    assert not [p for p in rejected_dir.rglob("*") if p.is_file()]
    assert DocumentStore(settings.data_dir).registry.reads.get(doc["id"]) is None, "its row is gone"
    assert_error(client.get(doc["status_url"]), 404, "not_found")
    assert_error(client.delete(doc["status_url"]), 404, "not_found")
    assert client.get("/documents", params={"status": "rejected"}).json()["total"] == 0


def test_deleting_a_queued_upload_means_it_is_never_ingested(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[upload(corpus, NORWICH)]).json()["documents"][0]
    store = DocumentStore(settings.data_dir)
    assert (store.incoming_dir / doc["id"]).is_dir()

    assert client.delete(doc["status_url"]).status_code == 204
    tick = take_into_partitions(instance, settings.data_dir)

    assert not tick.dynamic_partitions_requests and not tick.run_requests, "nothing claimed"
    assert not instance.has_dynamic_partition(DOCUMENTS, doc["id"])
    assert not (store.incoming_dir / doc["id"]).exists(), "its bytes are gone"
    gone = client.get(doc["status_url"]).json()
    assert (gone["status"], gone["run_ids"], gone["chunks"]) == ("deleted", [], None)
    assert client.get("/documents").json()["total"] == 0


def test_put_replaces_a_document_once_the_new_version_is_indexed(
    client, instance, settings, corpus: Path
) -> None:
    old = client.post(
        "/documents", files=[upload(corpus, "markdown/haystack_sample.md", "guide.md")]
    ).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))

    response = client.put(
        old["status_url"], files=[upload(corpus, "markdown/plumber_README.md", "guide.md")]
    )

    assert response.status_code == 202
    new = response.json()["documents"][0]
    assert new["id"] != old["id"]
    assert client.get(old["status_url"]).json()["status"] == "indexed", "still searchable meanwhile"
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(new["status_url"]).json()["status"] == "indexed"
    replaced = client.get(old["status_url"]).json()
    assert replaced["status"] == "deleted" and replaced["superseded_by"] == new["id"]
    # Lexical search follows the replacement: the old text is gone, the new one is found.
    old_phrase = {"q": "Haystack", "mode": "lexical", "k": 20}
    assert all(
        h["document_id"] != old["id"]
        for h in client.get("/search", params=old_phrase).json()["results"]
    )
    new_hits = client.get("/search", params={"q": "pdfplumber", "mode": "lexical"}).json()
    assert new_hits["results"][0]["document_id"] == new["id"]


@pytest.mark.parametrize("doc_id", ["a%00b", "..%2Fregistry.db", "..%2F..%2Fetc%2Fpasswd", "x'--"])
def test_ids_no_document_could_have_are_404_without_touching_the_store(
    client, corpus: Path, doc_id: str
) -> None:
    client.post("/documents", files=[upload(corpus, "markdown/haystack_sample.md")])
    for method in ("GET", "DELETE"):
        assert_error(client.request(method, f"/documents/{doc_id}"), 404, "not_found")
    assert_error(client.get(f"/documents/{doc_id}/events"), 404, "not_found")
    assert client.get("/documents").json()["total"] == 1, "the real document is untouched"
