"""PUT /documents/{id}: a new version, refused like an upload, and never at the old one's cost.

The old version stays indexed and searchable until the new one is indexed; a new version that
fails leaves it so for good. The happy path, where the new version supersedes the old, is in
test_documents.py.
"""

from pathlib import Path

import pytest
from support.api import assert_error, land_rejected, upload
from support.runs import ingest_landed

from rag_pipeline.core.storage.data_dir import DocumentStore

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"


def _indexed(client, instance, settings, corpus: Path, name: str = "guide.txt") -> dict:
    doc = client.post("/documents", files=[upload(corpus, NORWICH, name)]).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(doc["status_url"]).json()["status"] == "indexed"
    return doc


def _assert_found_in_every_mode(client, doc_id: str) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        hits = client.get("/search", params={"q": "Norwich City Football Club", "mode": mode})
        assert doc_id in [h["document_id"] for h in hits.json()["results"]], mode


def _registered(settings) -> int:
    return DocumentStore(settings.data_dir).registry.reads.page()[1]


@pytest.mark.parametrize("state", ["unknown", "deleted", "rejected"])
def test_put_on_an_id_that_is_not_a_live_document_is_404(
    client, instance, settings, corpus: Path, state: str
) -> None:
    if state == "unknown":
        target = "/documents/nope-123"
    elif state == "deleted":
        doc = client.post("/documents", files=[upload(corpus, NORWICH)]).json()["documents"][0]
        assert client.delete(doc["status_url"]).status_code == 204
        target = doc["status_url"]
    else:
        empty = (corpus / "text/uns_empty.txt").read_bytes()
        target = land_rejected(instance, settings.data_dir, "empty.txt", empty)["status_url"]
    before = client.get(target).json() if state != "unknown" else None
    count = _registered(settings)

    response = client.put(target, files=[upload(corpus, "markdown/haystack_sample.md")])

    assert_error(response, 404, "not_found")
    assert _registered(settings) == count, "nothing was registered"
    if before is not None:
        assert client.get(target).json() == before, "the document is as it was"
    store = DocumentStore(settings.data_dir)
    assert not store.incoming_dir.exists() or not list(store.incoming_dir.rglob("*.md"))


@pytest.mark.parametrize("name", ["guide.txt", "renamed.txt"])
def test_put_with_the_same_bytes_is_the_same_document(
    client, instance, settings, corpus: Path, name: str
) -> None:
    old = _indexed(client, instance, settings, corpus)

    response = client.put(old["status_url"], files=[upload(corpus, NORWICH, name)])

    assert response.status_code == 200, response.text
    [doc] = response.json()["documents"]
    assert (doc["id"], doc["duplicate"], doc["status"]) == (old["id"], True, "indexed")
    assert _registered(settings) == 1
    assert ingest_landed(instance, str(settings.data_dir)) == [], "nothing new to ingest"
    assert client.get(old["status_url"]).json()["status"] == "indexed"


def test_put_refuses_what_an_upload_refuses_and_keeps_the_old_version(
    client, instance, settings, corpus: Path
) -> None:
    old = _indexed(client, instance, settings, corpus)
    url = old["status_url"]
    before = client.get(url).json()

    big = ("file", ("guide.txt", b"word " * 60_000))  # 300 KB > 0.25 MB
    assert_error(client.put(url, files=[big]), 413, "payload_too_large")
    gif = ("file", ("guide.txt", b"GIF89a" + bytes(range(256)) * 8))  # images but GIF are read
    assert_error(client.put(url, files=[gif]), 415, "unsupported_type")
    empty = upload(corpus, "text/uns_empty.txt", "guide.txt")
    assert_error(client.put(url, files=[empty]), 422, "empty_file")
    new = upload(corpus, "markdown/haystack_sample.md", "guide.md")
    for options in ({"chunk_size": "0"}, {"chunk_size": "50", "chunk_overlap": "50"}):
        assert_error(client.put(url, files=[new], data=options), 422, "invalid_options")
    assert_error(client.put(url, files=[new], data={"chunk_size": "abc"}), 422, "invalid_request")
    assert_error(client.put(url), 422, "invalid_request")

    assert _registered(settings) == 1, "no refused version was registered"
    assert client.get(url).json() == before
    _assert_found_in_every_mode(client, old["id"])


def test_a_new_version_that_fails_leaves_the_old_one_indexed(
    client, instance, settings, corpus: Path
) -> None:
    old = _indexed(client, instance, settings, corpus)

    response = client.put(
        old["status_url"], files=[upload(corpus, "pdf_problem/uns_password.pdf", "guide.pdf")]
    )
    assert response.status_code == 202, response.text
    new = response.json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))

    failed = client.get(new["status_url"]).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "password_required"
    kept = client.get(old["status_url"]).json()
    assert (kept["status"], kept["superseded_by"], kept["deleted_at"]) == ("indexed", None, None)
    assert kept["chunks"] > 0
    _assert_found_in_every_mode(client, old["id"])
    listed = {d["id"]: d["status"] for d in client.get("/documents").json()["items"]}
    assert listed == {old["id"]: "indexed", new["id"]: "failed"}
