"""What the console's Documents view and document detail read and do: the listing narrowed
by a metadata filter (the language of search), paged in arrival order; a document's chunks,
for its own collection's keys only; and a retry of one failed document."""

import itertools
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.runs import definitions, ingest_landed

from rag_api.main import create_app
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import named_documents
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

FILES = {
    "text/uns_norwich-city.txt": {"team": "blue", "year": 2020},
    "markdown/plumber_README.md": {"team": "red", "year": 2022},
    "markdown/haystack_sample.md": {"team": "blue", "year": 2023},
    "markdown/uns_codeblock.md": {"team": "blue", "year": 2024},
    "markdown/pypdf_extract-text.md": {"team": "red", "year": 2024},
}


@pytest.fixture()
def listed(client: TestClient, corpus: Path) -> list[str]:
    """Five documents in `default`, one by one so their arrival order is known, and a blue
    one in `other`; returns the five ids in arrival order."""
    ids = []
    for rel, labels in FILES.items():
        response = client.post(
            "/documents", files=[upload(corpus, rel)], data={"metadata": json.dumps(labels)}
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["documents"][0]["id"])
    client.post("/collections", json={"name": "other"})
    client.post(
        "/collections/other/documents",
        files=[upload(corpus, "text/uns_UDHR_first_article_all.txt")],
        data={"metadata": '{"team": "blue"}'},
    )
    return ids


def _ids(client: TestClient, **params: object) -> tuple[list[str], int]:
    response = client.get("/documents", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [d["id"] for d in body["items"]], body["total"]


def test_the_listing_takes_a_metadata_filter_and_pages_in_arrival_order(
    client: TestClient, listed: list[str]
) -> None:
    blue = [listed[0], listed[2], listed[3]]
    blue_filter = '{"team": "blue"}'
    assert _ids(client, filter=blue_filter, collection="default") == (blue, 3)
    # Page by page, in the order they arrived, with the same total on every page.
    first = _ids(client, filter=blue_filter, collection="default", limit=2)
    second = _ids(client, filter=blue_filter, collection="default", limit=2, offset=2)
    assert first == (blue[:2], 3) and second == (blue[2:], 3)
    assert _ids(client, filter=blue_filter, collection="default", offset=3) == ([], 3)
    # Without a collection: every one the key may read.
    every, total = _ids(client, filter=blue_filter)
    assert total == 4 and every[:3] == blue
    # The whole language, with status and collection on top.
    recent = '{"$and": [{"year": {"$gte": 2023}}, {"team": {"$ne": "red"}}]}'
    assert _ids(client, filter=recent) == ([listed[2], listed[3]], 2)
    assert _ids(client, filter=blue_filter, collection="default", status="queued")[1] == 3
    assert _ids(client, filter=blue_filter, status="indexed") == ([], 0)
    assert _ids(client, filter='{"filename": "plumber_README.md"}') == ([listed[1]], 1)


def test_a_metadata_change_counts_in_the_next_listing(
    client: TestClient, listed: list[str]
) -> None:
    assert client.patch(f"/documents/{listed[1]}", json={"metadata": {"team": "blue"}}).is_success
    assert _ids(client, filter='{"team": "red"}') == ([listed[4]], 1)
    assert client.delete(f"/documents/{listed[4]}").status_code == 204
    assert _ids(client, filter='{"team": "red"}') == ([], 0)


def test_a_bad_filter_is_422_like_search(client: TestClient, listed: list[str]) -> None:
    for bad in ("{not json", '{"year": {"$gt": "soon"}}', '{"$nor": []}', "[1]"):
        listing = assert_error(
            client.get("/documents", params={"filter": bad}), 422, "invalid_filter"
        )
        searched = assert_error(
            client.get("/search", params={"q": "x", "filter": bad}), 422, "invalid_filter"
        )
        assert listing["error"]["message"] == searched["error"]["message"]


def test_a_documents_chunks_page_in_order_with_their_sources(
    client: TestClient, instance, settings: Settings, corpus: Path
) -> None:
    rel = "markdown/pypdf_extract-text.md"
    doc = client.post("/documents", files=[upload(corpus, rel)]).json()["documents"][0]["id"]
    # Before it is chunked there are none.
    assert client.get(f"/documents/{doc}/chunks").json()["total"] == 0
    ingest_landed(instance, str(settings.data_dir))
    report = client.get(f"/documents/{doc}").json()
    assert report["status"] == "indexed" and report["chunks"] > 3

    first = client.get(f"/documents/{doc}/chunks", params={"limit": 2}).json()
    rest = client.get(f"/documents/{doc}/chunks", params={"limit": 500, "offset": 2}).json()
    assert first["total"] == rest["total"] == report["chunks"]
    chunks = first["items"] + rest["items"]
    assert [c["chunk_no"] for c in chunks] == list(range(report["chunks"]))
    text = (corpus / rel).read_text(encoding="utf-8", errors="replace")
    for chunk in chunks:
        assert chunk["page"] >= 1 and chunk["page_end"] >= chunk["page"]
        assert 0 < chunk["tokens"] <= settings.chunk_size
        assert chunk["char_end"] - chunk["char_start"] == len(chunk["text"])
    # The offsets walk forward through the text, and the chunks hold its words.
    assert all(a["char_start"] < b["char_start"] for a, b in itertools.pairwise(chunks))
    assert chunks[0]["text"].split()[0] in text
    assert_error(client.get("/documents/nope-123/chunks"), 404, "not_found")
    assert_error(
        client.get(f"/documents/{doc}/chunks", params={"limit": 0}), 422, "invalid_request"
    )


def test_another_collections_key_never_learns_a_document_or_its_chunks_exist(
    settings: Settings, instance, corpus: Path
) -> None:
    root = {"Authorization": "Bearer root-admin-key"}
    app = create_app(settings.model_copy(update={"api_key": "root-admin-key"}), instance)
    with TestClient(app) as client:
        readers, docs = {}, {}
        for name, rel in (
            ("acme", "text/uns_norwich-city.txt"),
            ("globex", "markdown/plumber_README.md"),
        ):
            client.post("/collections", json={"name": name}, headers=root)
            docs[name] = client.post(
                f"/collections/{name}/documents",
                files=[upload(corpus, rel)],
                data={"metadata": json.dumps({"owner": name})},
                headers=root,
            ).json()["documents"][0]["id"]
            made = client.post(
                "/keys", json={"name": name, "role": "reader", "collections": [name]}, headers=root
            )
            readers[name] = {"Authorization": f"Bearer {made.json()['secret']}"}
        ingest_landed(instance, str(settings.data_dir))

        own = client.get(f"/documents/{docs['acme']}/chunks", headers=readers["acme"])
        assert own.status_code == 200 and own.json()["total"] > 0
        foreign = client.get(f"/documents/{docs['globex']}/chunks", headers=readers["acme"])
        unknown = client.get("/documents/nope-123/chunks", headers=readers["acme"])
        assert_error(foreign, 404, "not_found")
        assert_error(unknown, 404, "not_found")
        assert foreign.json()["error"]["message"].replace(docs["globex"], "X") == unknown.json()[
            "error"
        ]["message"].replace("nope-123", "X")
        # A filter naming the other collection's metadata finds nothing, nor does naming it.
        listed = client.get(
            "/documents", params={"filter": '{"owner": "globex"}'}, headers=readers["acme"]
        )
        assert listed.json()["total"] == 0
        assert (
            client.get("/documents", params={"filter": '{"owner": "globex"}'}, headers=root).json()[
                "total"
            ]
            == 1
        )
        # Retrying is for admin keys.
        assert_error(
            client.post(f"/documents/{docs['acme']}/retry", headers=readers["acme"]),
            403,
            "forbidden",
        )


def test_one_failed_document_is_retried_alone(
    client: TestClient, instance, settings: Settings, corpus: Path
) -> None:
    ids = [
        client.post("/documents", files=[upload(corpus, rel)]).json()["documents"][0]["id"]
        for rel in ("text/uns_norwich-city.txt", "markdown/haystack_sample.md")
    ]
    ingest_landed(instance, str(settings.data_dir))
    registry = DocumentStore(settings.data_dir).registry
    for doc_id in ids:
        registry.projection.stage_failed(
            doc_id, "chunk_embeddings", "dead-run", "run_failed", "lost"
        )

    asked = client.post(f"/documents/{ids[0]}/retry")

    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["first_stage"] == "chunk_embeddings"
    assert asked.headers["Location"] == f"/documents/{ids[0]}"
    assert client.get(f"/documents/{ids[0]}").json()["status"] == "queued"
    # The other failure is left as it was: this is not the collection-wide retry.
    assert client.get(f"/documents/{ids[1]}").json()["status"] == "failed"
    run = instance.get_run_by_id(body["run_id"])
    assert run is not None and named_documents(run.tags) == [ids[0]]
    # Not failed: a clear 409, in the one error shape.
    busy = assert_error(client.post(f"/documents/{ids[0]}/retry"), 409, "document_busy")
    assert "queued" in busy["error"]["message"]
    job = definitions().resolve_job_def("ingest_job")
    executed = job.execute_in_process(
        instance=instance, tags=run.tags, asset_selection=list(run.asset_selection or [])
    )
    assert executed.success
    assert client.get(f"/documents/{ids[0]}").json()["status"] == "indexed"
    done = assert_error(client.post(f"/documents/{ids[0]}/retry"), 409, "not_failed")
    assert "indexed" in done["error"]["message"]
    assert_error(client.post("/documents/nope-123/retry"), 404, "not_found")
