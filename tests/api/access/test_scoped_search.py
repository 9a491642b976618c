"""A scoped key's search is restricted to its own collections' documents, always: also when
its list happens to cover every collection there is, and when a collection is made while the
query runs. There is no "covers everything" shortcut."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.runs import ingest_landed

from rag_api.main import create_app
from rag_pipeline.core.registry.tenancy import Tenancy
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

ROOT = {"Authorization": "Bearer root"}
TEXT = "text/uns_norwich-city.txt"
QUERY = "Norwich City football club Carrow Road"


@pytest.fixture()
def api(settings: Settings, instance: object) -> Iterator[TestClient]:
    rooted = settings.model_copy(update={"api_key": "root", "open_access": False})
    with TestClient(create_app(rooted, instance)) as client:
        yield client


def _upload(client: TestClient, collection: str, data: bytes, name: str) -> str:
    posted = client.post(
        f"/collections/{collection}/documents", files=[("file", (name, data))], headers=ROOT
    )
    assert posted.status_code == 202, posted.text
    doc_id: str = posted.json()["documents"][0]["id"]
    return doc_id


def _found(client: TestClient, headers: dict[str, str], mode: str) -> set[str]:
    answer = client.get("/search", params={"q": QUERY, "k": 20, "mode": mode}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {hit["document_id"] for hit in answer.json()["results"]}


def test_a_collection_made_after_the_key_never_reaches_its_search(
    api, settings: Settings, instance: object, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (corpus / TEXT).read_bytes()
    assert api.post("/collections", json={"name": "mine"}, headers=ROOT).status_code == 201
    own = _upload(api, "mine", text, "norwich.txt")
    # Its list covers every collection there is at this moment: default and mine.
    made = api.post(
        "/keys",
        json={"name": "r", "role": "reader", "collections": ["default", "mine"]},
        headers=ROOT,
    )
    assert made.status_code == 201, made.text
    reader = {"Authorization": f"Bearer {made.json()['secret']}"}

    assert api.post("/collections", json={"name": "later"}, headers=ROOT).status_code == 201
    foreign = _upload(api, "later", text + b"\nA later copy.\n", "norwich-later.txt")
    ingest_landed(instance, str(settings.data_dir))

    for mode in ("lexical", "hybrid"):
        # The same query finds both for the admin: the foreign document is findable.
        assert {own, foreign} <= _found(api, ROOT, mode), mode
        found = _found(api, reader, mode)
        assert own in found and foreign not in found, (mode, found)

    # A collection made while the query runs: the request read the collections before
    # "later" existed, and its documents are in the lexical index by the time it looks.
    listed = Tenancy.collections

    def before_later(self: Tenancy, names: Any = None) -> list[Any]:
        return [c for c in listed(self, names) if c.name != "later"]

    monkeypatch.setattr(Tenancy, "collections", before_later)
    for mode in ("lexical", "hybrid"):
        found = _found(api, reader, mode)
        assert own in found and foreign not in found, (mode, found)
