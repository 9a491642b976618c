"""Two tenants, every endpoint, every role, and each other's ids.

Acme and Globex each have a collection, a writer key and a reader key; RAG_API_KEY is the
admin over both. A key never learns that the other collection's documents exist: their ids
are 404 (as for an id nobody has), they are never listed or found, and they cannot be changed
or deleted. A role too low for a request is 403 whatever the target, so a refusal says
nothing either.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.runs import ingest_landed

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

ROOT = "root-admin-key"
TENANTS = {"acme": "text/uns_norwich-city.txt", "globex": "markdown/plumber_README.md"}
SPARE = "markdown/haystack_sample.md"
QUERY = "Norwich City pdfplumber extracts football"


@dataclass
class Tenant:
    name: str
    doc: str  # an indexed document of its collection
    keys: dict[str, str]  # role -> secret


@pytest.fixture()
def world(settings: Settings, instance, corpus: Path) -> Iterator[tuple[TestClient, dict]]:
    app = create_app(settings.model_copy(update={"api_key": ROOT}), instance)
    with TestClient(app) as client:
        root = {"Authorization": f"Bearer {ROOT}"}
        tenants = {}
        for name, rel in TENANTS.items():
            assert client.post("/collections", json={"name": name}, headers=root).status_code == 201
            doc = client.post(
                f"/collections/{name}/documents",
                files=[upload(corpus, rel)],
                data={"metadata": json.dumps({"owner": name})},
                headers=root,
            ).json()["documents"][0]["id"]
            keys = {}
            for role in ("writer", "reader"):
                made = client.post(
                    "/keys",
                    json={"name": f"{name}-{role}", "role": role, "collections": [name]},
                    headers=root,
                )
                assert made.status_code == 201, made.text
                keys[role] = made.json()["secret"]
            tenants[name] = Tenant(name, doc, keys)
        ingest_landed(instance, str(settings.data_dir))
        yield client, tenants


def _as(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("me,them", [("acme", "globex"), ("globex", "acme")])
@pytest.mark.parametrize("role", ["reader", "writer"])
def test_a_key_sees_and_touches_its_own_collection_only(
    world, corpus: Path, me: str, them: str, role: str
) -> None:
    client, tenants = world
    mine, theirs = tenants[me], tenants[them]
    h = _as(mine.keys[role])
    foreign = f"/documents/{theirs.doc}"
    own = f"/documents/{mine.doc}"

    # Reading: own documents and collection; the other's are not found, never listed.
    listed = client.get("/documents", headers=h).json()
    assert [d["id"] for d in listed["items"]] == [mine.doc] and listed["total"] == 1
    assert client.get(own, headers=h).json()["collection"] == me
    assert_error(client.get(foreign, headers=h), 404, "not_found")
    assert_error(client.get(f"{foreign}/events", headers=h), 404, "not_found")
    with client.stream("GET", f"{own}/events", headers=h) as stream:
        assert stream.status_code == 200
    assert_error(client.get("/documents", params={"collection": them}, headers=h), 404, "not_found")
    assert [c["name"] for c in client.get("/collections", headers=h).json()] == [me]
    assert client.get(f"/collections/{me}", headers=h).status_code == 200
    assert_error(client.get(f"/collections/{them}", headers=h), 404, "not_found")
    assert_error(client.get("/collections/default", headers=h), 404, "not_found")

    # Searching: every mode, by GET and POST, finds only its own collection's chunks.
    for mode in ("hybrid", "dense", "lexical"):
        got = client.get("/search", params={"q": QUERY, "mode": mode, "k": 50}, headers=h)
        assert {r["document_id"] for r in got.json()["results"]} == {mine.doc}, mode
        posted = client.post("/search", json={"q": QUERY, "mode": mode, "k": 50}, headers=h)
        assert {r["document_id"] for r in posted.json()["results"]} == {mine.doc}, mode
    by_id = {"q": QUERY, "filter": json.dumps({"document_id": theirs.doc})}
    assert client.get("/search", params=by_id, headers=h).json()["results"] == []
    assert_error(
        client.get("/search", params={"q": QUERY, "collection": them}, headers=h),
        404,
        "not_found",
    )
    assert_error(
        client.post("/search", json={"q": QUERY, "collections": [me, them]}, headers=h),
        404,
        "not_found",
    )

    # Administration is an admin's, whatever the target.
    for method, path, body in (
        ("POST", "/collections", {"name": "mine-now"}),
        ("PATCH", f"/collections/{me}", {"description": "x"}),
        ("DELETE", f"/collections/{me}", None),
        ("DELETE", f"/collections/{them}", None),
        ("POST", "/keys", {"name": "x", "role": "reader", "collections": [me]}),
        ("GET", "/keys", None),
        ("DELETE", "/keys/whatever", None),
    ):
        assert_error(client.request(method, path, json=body, headers=h), 403, "forbidden")

    # Writing: a reader may not; a writer may in its own collection, and finds nothing else.
    changes = [
        ("PATCH", own, {"json": {"metadata": {"seen": True}}}),
        ("PUT", own, {"files": [upload(corpus, SPARE)]}),
        ("POST", f"/collections/{me}/documents", {"files": [upload(corpus, SPARE)]}),
    ]
    if role == "reader":
        for method, path, body in [*changes, ("DELETE", own, {})]:
            assert_error(client.request(method, path, headers=h, **body), 403, "forbidden")
        for method, path in (("PATCH", foreign), ("DELETE", foreign)):
            assert_error(client.request(method, path, headers=h), 403, "forbidden")
        return
    for method, path, body in (
        ("PATCH", foreign, {"json": {"metadata": {"mine": True}}}),
        ("PUT", foreign, {"files": [upload(corpus, SPARE)]}),
        ("DELETE", foreign, {}),
        ("POST", f"/collections/{them}/documents", {"files": [upload(corpus, SPARE)]}),
        ("POST", "/documents", {"files": [upload(corpus, SPARE)]}),  # `default` is not its
    ):
        assert_error(client.request(method, path, headers=h, **body), 404, "not_found")
    for method, path, body in changes:
        assert client.request(method, path, headers=h, **body).status_code in (200, 202)
    assert client.delete(own, headers=h).status_code == 204
    # The other tenant's document is untouched by all of it.
    root = {"Authorization": f"Bearer {ROOT}"}
    untouched = client.get(foreign, headers=root).json()
    assert untouched["status"] == "indexed" and untouched["metadata"] == {"owner": them}


def test_the_admin_key_sees_every_collection_and_manages_them(world) -> None:
    client, tenants = world
    root = {"Authorization": f"Bearer {ROOT}"}
    assert client.get("/documents", headers=root).json()["total"] == 2
    assert {c["name"] for c in client.get("/collections", headers=root).json()} == {
        "acme",
        "default",
        "globex",
    }
    hits = client.get("/search", params={"q": QUERY, "k": 50}, headers=root).json()["results"]
    assert {h["document_id"] for h in hits} == {t.doc for t in tenants.values()}
    assert {k["name"] for k in client.get("/keys", headers=root).json()} == {
        "acme-writer",
        "acme-reader",
        "globex-writer",
        "globex-reader",
    }


def test_deleting_a_collection_takes_it_off_its_keys(world, corpus: Path) -> None:
    client, tenants = world
    root = {"Authorization": f"Bearer {ROOT}"}
    assert client.delete("/collections/globex", headers=root).status_code == 204
    listed = {k["name"]: k for k in client.get("/keys", headers=root).json()}
    assert listed["globex-writer"]["collections"] == []
    # Made again under the same name, the old keys do not reach it.
    client.post("/collections", json={"name": "globex"}, headers=root)
    writer = _as(tenants["globex"].keys["writer"])
    assert_error(client.get("/collections/globex", headers=writer), 404, "not_found")
    assert_error(
        client.post("/collections/globex/documents", files=[upload(corpus, SPARE)], headers=writer),
        404,
        "not_found",
    )


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_operations_need_the_admin_role(world, role: str) -> None:
    """Reprocess, retry, schedules and runs: 403 for a tenant's key, whatever it names (its
    own document, the other's, or nothing), so neither learns anything from them."""
    client, tenants = world
    acme, globex = tenants["acme"], tenants["globex"]
    key = _as(acme.keys[role])
    requests = [
        ("post", f"/documents/{acme.doc}/reprocess", {"chunk_size": 100}),
        ("post", f"/documents/{globex.doc}/reprocess", None),
        ("post", "/documents/retry", {"collection": "globex"}),
        ("patch", "/schedules/backup_schedule", {"running": False}),
        ("post", "/schedules/backup_schedule/run", None),
        ("get", "/runs/00000000-0000-0000-0000-000000000000", None),
    ]
    for method, path, body in requests:
        kwargs = {"json": body} if body is not None else {}
        answer = client.request(method.upper(), path, headers=key, **kwargs)
        assert_error(answer, 403, "forbidden")
    # The admin key reaches them: a run that does not exist is 404, not 403.
    root = {"Authorization": f"Bearer {ROOT}"}
    missing = client.get("/runs/00000000-0000-0000-0000-000000000000", headers=root)
    assert_error(missing, 404, "not_found")
