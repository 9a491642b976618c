"""What the console's Documents view and document detail read: the listing narrowed by a
metadata filter (the language of search), paged in arrival order."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, upload

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
