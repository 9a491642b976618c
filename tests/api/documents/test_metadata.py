"""Metadata through the API: sent with an upload, changed by PATCH without re-embedding, shown
in Dagster, and seen by search at once, in this API process and in another."""

import json
from pathlib import Path

import pytest
from dagster import AssetKey
from fastapi.testclient import TestClient
from support.api import assert_error, assert_nothing_kept, upload
from support.runs import ingest_landed

from rag_api.main import create_app

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"
HAYSTACK = "markdown/haystack_sample.md"


def test_an_upload_carries_metadata_for_each_of_its_files(client, corpus: Path) -> None:
    labels = {"team": "red", "year": 2024, "public": True, "tags": ["sport", "uk"]}
    response = client.post(
        "/documents",
        files=[upload(corpus, NORWICH), upload(corpus, HAYSTACK)],
        data={"metadata": json.dumps(labels)},
    )
    assert response.status_code == 202, response.text
    for doc in response.json()["documents"]:
        assert client.get(doc["status_url"]).json()["metadata"] == labels


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '["a"]',
        '{"nested": {"a": 1}}',
        '{"n": null}',
        '{"document_id": "x"}',
        json.dumps({"big": "x" * 9000}),
    ],
)
def test_metadata_that_cannot_be_kept_is_422_and_nothing_is_kept(
    client, settings, corpus: Path, raw: str
) -> None:
    response = client.post("/documents", files=[upload(corpus, NORWICH)], data={"metadata": raw})
    body = assert_error(response, 422, "invalid_metadata")
    assert body["error"]["message"]
    assert_nothing_kept(settings)


def test_patch_changes_metadata_without_re_embedding(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post(
        "/documents", files=[upload(corpus, NORWICH)], data={"metadata": '{"team": "red"}'}
    ).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))
    embedded = instance.fetch_materializations(AssetKey("chunk_embeddings"), limit=100).records
    # Another API process, which has searched already: it learns of the change from the
    # registry, not from this process.
    with TestClient(create_app(settings, instance)) as other:
        blue = {"q": "Norwich City", "filter": json.dumps({"team": "blue"})}
        assert other.get("/search", params=blue).json()["results"] == []

        changed = client.patch(doc["status_url"], json={"metadata": {"team": "blue", "n": 3}})

        assert changed.status_code == 200, changed.text
        assert changed.json()["metadata"] == {"team": "blue", "n": 3}
        for api in (client, other):
            found = api.get("/search", params=blue).json()["results"]
            assert found and {h["document_id"] for h in found} == {doc["id"]}
            assert found[0]["metadata"] == {"team": "blue", "n": 3}
            red = {"q": "Norwich City", "filter": '{"team": "red"}'}
            assert api.get("/search", params=red).json()["results"] == []

    removed = client.patch(doc["status_url"], json={"metadata": {"n": None}}).json()
    assert removed["metadata"] == {"team": "blue"}
    after = instance.fetch_materializations(AssetKey("chunk_embeddings"), limit=100).records
    assert len(after) == len(embedded), "no new embedding"
    # The change shows on the document's partition in Dagster.
    seen = instance.fetch_observations(AssetKey("raw_document"), limit=10).records
    ours = [r.asset_observation for r in seen if r.asset_observation.partition == doc["id"]]
    assert ours and ours[0].metadata["document_metadata"].value == {"team": "blue"}

    assert_error(
        client.patch(doc["status_url"], json={"metadata": {"x": {"y": 1}}}), 422, "invalid_metadata"
    )
    assert_error(client.patch(doc["status_url"], json={"meta": {}}), 422, "invalid_request")
    assert_error(client.patch("/documents/nope-0", json={"metadata": {}}), 404, "not_found")
    assert client.delete(doc["status_url"]).status_code == 204
    assert_error(client.patch(doc["status_url"], json={"metadata": {"a": "b"}}), 404, "not_found")


def test_a_new_version_keeps_the_old_ones_metadata_unless_given_new(
    client, instance, settings, corpus: Path
) -> None:
    old = client.post(
        "/documents", files=[upload(corpus, HAYSTACK, "guide.md")], data={"metadata": '{"v": 1}'}
    ).json()["documents"][0]
    new = client.put(old["status_url"], files=[upload(corpus, NORWICH, "guide.md")]).json()
    assert client.get(new["documents"][0]["status_url"]).json()["metadata"] == {"v": 1}
    newer = client.put(
        new["documents"][0]["status_url"],
        files=[upload(corpus, "markdown/plumber_README.md", "guide.md")],
        data={"metadata": '{"v": 3}'},
    ).json()
    assert client.get(newer["documents"][0]["status_url"]).json()["metadata"] == {"v": 3}
