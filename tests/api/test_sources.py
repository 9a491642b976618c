"""Bucket sources through the API: managed by admins, synced on request, kept in step.

A real S3 API server (moto's, on loopback) holds the objects; boto3 reads them over HTTP. The
runs a sync leads to are the landing-zone sensor's, evaluated and run in process.
"""

from pathlib import Path

import pytest
from support.api import assert_error
from support.runs import ingest_landed
from support.s3 import CREDENTIALS_ENV, SECRET_KEY

from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api", "support.s3"]

ADMIN = "admin-key-for-sources"
SQUAD = "retrieval/squad_v1.1_dev/docs"


@pytest.fixture()
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_key": ADMIN})


@pytest.fixture()
def admin(client):
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


def _source(admin, s3, bucket: str) -> dict:
    response = admin.post(
        "/collections/default/sources",
        json={
            "type": "s3",
            "bucket": bucket,
            "prefix": "docs/",
            "endpoint_url": s3.url,
            "credentials_env": CREDENTIALS_ENV,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def _search(admin, q: str, **params: str) -> list[dict]:
    response = admin.get("/search", params={"q": q, "k": 20, "mode": "lexical", **params})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_sources_are_managed_by_admins_and_never_show_a_secret(admin, s3, settings) -> None:
    bucket = s3.bucket()
    made = _source(admin, s3, bucket)
    assert made["credentials_env"] == CREDENTIALS_ENV and made["last_sync_at"] is None

    assert admin.get("/collections/default/sources").json() == [made]
    assert admin.get(f"/collections/default/sources/{made['id']}").json() == made
    writer = admin.post("/keys", json={"name": "w", "role": "writer", "collections": "*"}).json()[
        "secret"
    ]
    as_writer = {"Authorization": f"Bearer {writer}"}
    assert_error(admin.get("/collections/default/sources", headers=as_writer), 403, "forbidden")
    assert_error(
        admin.post(f"/collections/default/sources/{made['id']}/sync", headers=as_writer),
        403,
        "forbidden",
    )
    assert_error(admin.get("/collections/nope/sources"), 404, "not_found")
    assert_error(
        admin.post(
            "/collections/default/sources",
            json={"type": "s3", "bucket": "b" * 3, "credentials_env": "lower-case"},
        ),
        422,
        "invalid_source",
    )
    synced = admin.post(f"/collections/default/sources/{made['id']}/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json()["seen"] == 0
    shown = admin.get(f"/collections/default/sources/{made['id']}").json()
    assert shown["last_sync_at"] is not None and shown["last_error"] is None
    registry = (Path(settings.data_dir) / "registry.db").read_bytes()
    for body in (made, shown, synced.json()):
        assert SECRET_KEY not in str(body)
    assert SECRET_KEY.encode() not in registry, "no secret reaches the registry"

    assert admin.delete(f"/collections/default/sources/{made['id']}").status_code == 204
    assert_error(admin.get(f"/collections/default/sources/{made['id']}"), 404, "not_found")


@pytest.mark.slow
def test_a_bucket_stays_in_step_with_its_collection(
    admin, s3, instance, settings, corpus: Path
) -> None:
    # A dozen keeps the test at about a minute on a shared 2-core machine.
    files = sorted((corpus / SQUAD).glob("*.txt"))[:12]
    assert len(files) == 12
    bucket, client = s3.bucket(), s3.client()
    for path in files:
        client.put_object(Bucket=bucket, Key=f"docs/{path.name}", Body=path.read_bytes())
    client.put_object(Bucket=bucket, Key="elsewhere/outside.txt", Body=b"not under the prefix")
    source = _source(admin, s3, bucket)
    sync = f"/collections/default/sources/{source['id']}/sync"

    first = admin.post(sync).json()
    assert (first["seen"], first["added"], first["failed"]) == (len(files), len(files), 0)
    ingested = ingest_landed(instance, str(settings.data_dir))
    assert sorted(ingested) == sorted(first["documents"])
    docs = {d["id"]: d for d in admin.get("/documents", params={"limit": 500}).json()["items"]}
    assert len(docs) == len(files)
    assert {d["status"] for d in docs.values()} == {"indexed"}
    by_key = {d["metadata"]["source_key"]: d for d in docs.values()}
    assert set(by_key) == {f"docs/{p.name}" for p in files}
    assert all(d["metadata"]["source_version"] == 1 for d in docs.values())

    # Key, ETag and version are metadata search filters by.
    amazon = by_key["docs/Amazon_rainforest.txt"]
    hits = _search(admin, "rainforest", filter='{"source_key": "docs/Amazon_rainforest.txt"}')
    assert hits and {h["document_id"] for h in hits} == {amazon["id"]}

    # Overwritten: a new version; the old stays searchable until the new one is indexed.
    new_text = b"The Amazon basin now reads: xylophonic quokka marmalade, a changed object.\n"
    client.put_object(Bucket=bucket, Key="docs/Amazon_rainforest.txt", Body=new_text)
    changed = admin.post(sync).json()
    assert (changed["added"], changed["changed"], changed["retired"]) == (0, 1, 0)
    [new_id] = changed["documents"]
    assert admin.get(f"/documents/{amazon['id']}").json()["status"] == "indexed"
    assert amazon["id"] in {h["document_id"] for h in _search(admin, "rainforest")}
    ingest_landed(instance, str(settings.data_dir))
    new = admin.get(f"/documents/{new_id}").json()
    assert new["status"] == "indexed"
    assert new["metadata"]["source_version"] == 2
    old = admin.get(f"/documents/{amazon['id']}").json()
    assert old["status"] == "deleted"
    assert {h["document_id"] for h in _search(admin, "quokka marmalade")} == {new_id}
    assert amazon["id"] not in {h["document_id"] for h in _search(admin, "rainforest")}

    # Deleted: its document is retired, and nothing of it is found any more.
    gone = by_key["docs/1973_oil_crisis.txt"]
    assert gone["id"] in {h["document_id"] for h in _search(admin, "oil crisis OPEC")}
    client.delete_object(Bucket=bucket, Key="docs/1973_oil_crisis.txt")
    retired = admin.post(sync).json()
    assert (retired["added"], retired["changed"], retired["retired"]) == (0, 0, 1)
    assert admin.get(f"/documents/{gone['id']}").json()["status"] == "deleted"
    assert gone["id"] not in {h["document_id"] for h in _search(admin, "oil crisis OPEC")}
    for mode in ("dense", "hybrid"):
        hits = admin.get("/search", params={"q": "oil crisis OPEC", "k": 50, "mode": mode})
        assert gone["id"] not in {h["document_id"] for h in hits.json()["results"]}
    assert not DocumentStore(settings.data_dir).artifact_path("lexical", gone["id"]).exists()

    # No change: nothing registered, so the sensor has nothing to run.
    quiet = admin.post(sync).json()
    assert (quiet["added"], quiet["changed"], quiet["retired"], quiet["documents"]) == (0, 0, 0, [])
    assert ingest_landed(instance, str(settings.data_dir)) == []
    status = admin.get(f"/collections/default/sources/{source['id']}").json()
    assert status["last_counts"]["seen"] == len(files) - 1


def test_a_source_that_cannot_be_read_is_refused_and_one_that_goes_away_fails_its_sync(
    admin, s3, monkeypatch
) -> None:
    sources = "/collections/default/sources"
    reachable = {"type": "s3", "prefix": "docs/", "endpoint_url": s3.url}
    # No such bucket, a credential variable that is not set, an endpoint nobody answers on:
    # each refused when made, in the store's words, and nothing registered.
    no_bucket = {**reachable, "bucket": "no-such-bucket", "credentials_env": CREDENTIALS_ENV}
    refused = assert_error(admin.post(sources, json=no_bucket), 422, "source_unreachable")
    assert (
        "NoSuchBucket" in refused["error"]["message"]
        and "s3://no-such-bucket/docs/" in refused["error"]["message"]
    )
    unset = {**reachable, "bucket": s3.bucket(), "credentials_env": "NOT_SET_HERE"}
    refused = assert_error(admin.post(sources, json=unset), 422, "source_unreachable")
    assert "NOT_SET_HERE_ACCESS_KEY_ID" in refused["error"]["message"]
    dead = {**no_bucket, "endpoint_url": "http://127.0.0.1:9"}
    assert_error(admin.post(sources, json=dead), 422, "source_unreachable")
    assert admin.get(sources).json() == []

    # A source that could be read, whose store then goes away: its sync is a 502 that says
    # why, and the source keeps the error until a sync succeeds.
    bucket = s3.bucket()
    made = _source(admin, s3, bucket)
    s3.stop()
    failed = admin.post(f"{sources}/{made['id']}/sync")
    error = assert_error(failed, 502, "source_unreachable")
    assert f"s3://{bucket}/docs/" in error["error"]["message"]
    assert admin.get(f"{sources}/{made['id']}").json()["last_error"] == error["error"]["message"]
    s3.start()
    assert admin.post(f"{sources}/{made['id']}/sync").status_code == 200
    assert admin.get(f"{sources}/{made['id']}").json()["last_error"] is None
