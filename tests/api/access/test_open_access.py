"""Keys never fail open. With no key at all and RAG_OPEN_ACCESS off (the default), every
request that could touch data is refused with 401 `no_keys`, saying how to make the first
key; the real `rag-pipeline keys` CLI makes it; and the last admin key cannot be revoked, by
the API or the CLI, so revoking keys never reopens the API."""

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error
from support.env import BIN

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

# One of each kind: data, search, tenancy, keys, operations, and the event stream.
REQUESTS = [
    ("GET", "/documents"),
    ("GET", "/documents/x"),
    ("GET", "/documents/x/events"),
    ("DELETE", "/documents/x"),
    ("GET", "/search?q=x"),
    ("GET", "/collections"),
    ("GET", "/keys"),
    ("GET", "/keys/me"),
    ("POST", "/keys"),
    ("GET", "/schedules"),
    ("GET", "/runs/x"),
]


@pytest.fixture()
def closed(settings: Settings, instance: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"open_access": False}), instance)) as c:
        yield c


def keys_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`rag-pipeline keys ...` as a user runs it, on the test's data dir (rag_env)."""
    return subprocess.run(
        [str(BIN / "rag-pipeline"), "keys", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_no_key_at_all_every_request_is_refused_until_the_cli_makes_one(closed) -> None:
    for method, path in REQUESTS:
        for headers in ({}, {"Authorization": "Bearer rag_0123456789ab_forged"}):
            body = assert_error(closed.request(method, path, headers=headers), 401, "no_keys")
            assert "rag-pipeline keys create --role admin" in body["error"]["message"], path
            assert "RAG_API_KEY" in body["error"]["message"]
    # What holds no data stays reachable: /health for probes, the console a person enters a
    # key into, and the API description.
    for page in ("/health", "/console/", "/openapi.json", "/docs", "/redoc"):
        assert closed.get(page).status_code == 200, page

    made = keys_cli("create", "--role", "admin", "--name", "ops")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[-1]
    assert secret.startswith("rag_") and " " not in secret
    ops = {"Authorization": f"Bearer {secret}"}
    assert closed.get("/documents", headers=ops).status_code == 200
    assert closed.get("/keys/me", headers=ops).json()["role"] == "admin"
    # A key exists now: a request without one is plainly unauthorized.
    assert_error(closed.get("/documents"), 401, "unauthorized")

    listed = keys_cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["name"] == "ops" and record["role"] == "admin" and record["collections"] == "*"
    assert secret not in listed.stdout


@pytest.mark.slow
def test_the_cli_makes_scoped_keys_and_refuses_bad_ones(closed) -> None:
    ops = keys_cli("create", "--role", "admin", "--name", "ops", "--json")
    assert ops.returncode == 0, ops.stderr
    root = {"Authorization": f"Bearer {json.loads(ops.stdout)['secret']}"}
    assert closed.post("/collections", json={"name": "lab"}, headers=root).status_code == 201

    made = keys_cli("create", "--role", "reader", "--name", "r", "--collections", "lab", "--json")
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["role"] == "reader" and record["collections"] == ["lab"]
    me = closed.get("/keys/me", headers={"Authorization": f"Bearer {record['secret']}"})
    assert me.json()["collections"] == ["lab"] and me.json()["role"] == "reader"

    for args, says in [
        (("--role", "reader", "--name", "x"), "--collections"),
        (("--role", "reader", "--name", "x", "--collections", "nope"), "nope"),
        (("--role", "admin", "--name", "x", "--collections", "lab"), "every collection"),
    ]:
        refused = keys_cli("create", *args)
        assert refused.returncode == 1 and says in refused.stderr, refused
        assert refused.stdout == ""


def test_the_last_admin_key_is_never_revoked_so_the_api_stays_closed(
    closed, settings: Settings, instance: object
) -> None:
    first = json.loads(keys_cli("create", "--role", "admin", "--name", "a", "--json").stdout)
    ops = {"Authorization": f"Bearer {first['secret']}"}
    assert_error(closed.delete(f"/keys/{first['id']}", headers=ops), 409, "last_admin_key")
    refused = keys_cli("revoke", first["id"])
    assert refused.returncode == 1 and "last admin key" in refused.stderr, refused
    assert closed.get("/documents", headers=ops).status_code == 200, "the key still works"

    # With a second admin the first may go; then the second is the last.
    second = closed.post(
        "/keys", json={"name": "b", "role": "admin", "collections": "*"}, headers=ops
    )
    assert second.status_code == 201, second.text
    assert closed.delete(f"/keys/{first['id']}", headers=ops).status_code == 204
    two = {"Authorization": f"Bearer {second.json()['secret']}"}
    assert_error(closed.delete(f"/keys/{second.json()['id']}", headers=two), 409, "last_admin_key")

    # RAG_API_KEY is an admin that always exists: with it set, the last stored admin may go,
    # and the API stays closed to anyone without a key.
    rooted = settings.model_copy(update={"open_access": False, "api_key": "root"})
    with TestClient(create_app(rooted, instance)) as client:
        gone = client.delete(
            f"/keys/{second.json()['id']}", headers={"Authorization": "Bearer root"}
        )
        assert gone.status_code == 204
        assert_error(client.get("/documents"), 401, "unauthorized")
    # Without RAG_API_KEY, no key is left: closed, and saying how to make one.
    assert_error(closed.get("/documents"), 401, "no_keys")


def test_open_access_is_explicit_and_ends_with_the_first_key(settings, instance) -> None:
    """RAG_OPEN_ACCESS=true (what `make run` sets): open while no key exists, and only then."""
    opened = settings.model_copy(update={"open_access": True})
    with TestClient(create_app(opened, instance)) as client:
        assert client.get("/keys/me").json()["open"] is True
        assert client.get("/documents").status_code == 200
        made = keys_cli("create", "--role", "admin", "--name", "ops")
        assert made.returncode == 0, made.stderr
        assert_error(client.get("/documents"), 401, "unauthorized")
