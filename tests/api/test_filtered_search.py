"""Search narrowed by collections and metadata filters, in every mode, before the top k are
cut: a filtered query returns k hits whenever k matching chunks exist."""

import json
from pathlib import Path

import pytest
from support.api import assert_error, upload
from support.runs import ingest_landed

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"
PLUMBER = "markdown/plumber_README.md"
HAYSTACK = "markdown/haystack_sample.md"
CODEBLOCK = "markdown/uns_codeblock.md"


@pytest.fixture()
def docs(client, instance, settings, corpus: Path) -> dict[str, str]:
    client.post("/collections", json={"name": "other"})
    labels = {
        NORWICH: {"team": "red", "year": 2020, "tags": ["sport"], "published": "2020-03-01"},
        PLUMBER: {"team": "blue", "year": 2022, "tags": ["code", "pdf"], "published": "2023-06-01"},
        HAYSTACK: {
            "team": "blue",
            "year": 2024,
            "tags": ["code"],
            "published": "2024-05-01T08:00Z",
        },
    }
    ids = {}
    for rel, meta in labels.items():
        response = client.post(
            "/documents", files=[upload(corpus, rel)], data={"metadata": json.dumps(meta)}
        )
        ids[rel] = response.json()["documents"][0]["id"]
    response = client.post(
        "/collections/other/documents",
        files=[upload(corpus, CODEBLOCK)],
        data={"metadata": '{"team": "blue"}'},
    )
    ids[CODEBLOCK] = response.json()["documents"][0]["id"]
    ingest_landed(instance, str(settings.data_dir))
    return ids


def _found(client, **params: object) -> list[dict]:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_a_filter_applies_before_the_top_k(client, docs: dict[str, str], mode: str) -> None:
    # The query is about Norwich, so unfiltered its top 3 holds a red (Norwich) chunk; its
    # last words match chunks of the blue documents too (plumber's README is about PDF
    # tables), so that lexical search also has at least 3 blue chunks to find.
    query = "Norwich City Football Club history and the team, in a PDF table"
    blue_ids = {docs[PLUMBER], docs[HAYSTACK]}
    top = {h["document_id"] for h in _found(client, q=query, mode=mode, k=3)}
    assert docs[NORWICH] in top
    unfiltered = _found(client, q=query, mode=mode, k=100)
    assert len([h for h in unfiltered if h["document_id"] in blue_ids]) >= 3
    # A filter applied to that top 3 would leave at most two hits.
    blue = _found(client, q=query, mode=mode, k=3, filter='{"team": "blue"}')
    assert len(blue) == 3
    assert {h["document_id"] for h in blue} <= blue_ids
    # Across collections too, when asked for: the other collection's blue document (an HTML
    # example) is found beside the default's, and the red one is still left out.
    query = f"{query}, with an HTML example"
    both = _found(
        client,
        q=query,
        mode=mode,
        k=100,
        filter='{"team": "blue"}',
        collection=["default", "other"],
    )
    found = {h["document_id"] for h in both}
    assert {h["collection"] for h in both} == {"default", "other"}
    assert {docs[PLUMBER], docs[CODEBLOCK]} <= found <= blue_ids | {docs[CODEBLOCK]}
    only_other = _found(client, q=query, mode=mode, k=20, collection="other")
    assert {h["document_id"] for h in only_other} == {docs[CODEBLOCK]}


def test_the_filter_language_over_the_api(client, docs: dict[str, str]) -> None:
    query = "the"

    def ids(where: dict) -> set[str]:
        hits = _found(client, q=query, mode="dense", k=100, filter=json.dumps(where))
        return {h["document_id"] for h in hits}

    assert ids({"tags": "code"}) == {docs[PLUMBER], docs[HAYSTACK]}
    assert ids({"year": {"$gte": 2022, "$lt": 2024}}) == {docs[PLUMBER]}
    assert ids({"published": {"$gt": "2023-12-31"}}) == {docs[HAYSTACK]}
    assert ids({"team": {"$ne": "blue"}}) == {docs[NORWICH]}
    assert ids({"$or": [{"team": "red"}, {"tags": "pdf"}]}) == {docs[NORWICH], docs[PLUMBER]}
    assert ids({"document_id": docs[HAYSTACK]}) == {docs[HAYSTACK]}
    assert ids({"filename": "plumber_README.md"}) == {docs[PLUMBER]}
    assert ids({"media_type": "text/plain"}) == {docs[NORWICH]}
    assert ids({"team": "green"}) == set()
    # The same through POST, with the filter as an object.
    posted = client.post(
        "/search",
        json={"q": "pdf", "k": 100, "mode": "lexical", "filter": {"tags": {"$in": ["pdf"]}}},
    )
    assert posted.status_code == 200, posted.text
    assert {h["document_id"] for h in posted.json()["results"]} == {docs[PLUMBER]}
    posted = client.post(
        "/search", json={"q": "HTML example", "collections": ["other"], "mode": "lexical"}
    ).json()
    assert {h["document_id"] for h in posted["results"]} == {docs[CODEBLOCK]}


def test_bad_filters_and_collections_are_refused(client) -> None:
    for bad in ("{nope", '{"$where": 1}', '{"year": {"$gt": "soon"}}', "[]"):
        assert_error(client.get("/search", params={"q": "x", "filter": bad}), 422, "invalid_filter")
    assert_error(
        client.post("/search", json={"q": "x", "filter": {"a": {"$regex": "."}}}),
        422,
        "invalid_filter",
    )
    assert_error(client.post("/search", json={"q": "x", "k": 0}), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "x", "collection": "nope"}), 404, "not_found")
    assert_error(client.post("/search", json={"q": " "}), 422, "invalid_query")
