"""API keys: made by an admin, shown once, kept hashed, revoked at once; RAG_API_KEY is an
admin over every collection, and an open API (RAG_OPEN_ACCESS, no key) says so at start-up."""

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support.api import assert_error

from rag_api.main import create_app
from rag_pipeline.core.registry.model import api_keys
from rag_pipeline.core.storage.data_dir import DocumentStore

pytest_plugins = ["support.api"]


def test_a_key_is_shown_once_stored_hashed_and_revoked_at_once(client, settings) -> None:
    made = client.post("/keys", json={"name": "ops", "role": "admin", "collections": "*"})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert made.headers["location"] == f"/keys/{made.json()['id']}"
    # The API is closed now: the first key made on an open API closes it.
    assert_error(client.get("/documents"), 401, "unauthorized")
    ops = {"Authorization": f"Bearer {secret}"}
    reader = client.post(
        "/keys", json={"name": "r", "role": "reader", "collections": ["default"]}, headers=ops
    ).json()
    listed = client.get("/keys", headers=ops).json()
    assert [k["name"] for k in listed] == ["ops", "r"]
    assert all("secret" not in k for k in listed)
    assert listed[1]["collections"] == ["default"] and listed[0]["collections"] == "*"
    with DocumentStore(settings.data_dir).registry.db.engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys)).all()
    assert stored and all(secret not in str(tuple(row)) for row in stored)
    assert all(reader["secret"] not in str(tuple(row)) for row in stored)

    as_reader = {"Authorization": f"Bearer {reader['secret']}"}
    assert client.get("/documents", headers=as_reader).status_code == 200
    assert_error(client.delete(f"/keys/{listed[0]['id']}", headers=ops), 409, "last_admin_key")
    assert client.delete(f"/keys/{reader['id']}", headers=ops).status_code == 204
    assert_error(client.get("/documents", headers=as_reader), 401, "unauthorized")
    assert_error(client.delete(f"/keys/{reader['id']}", headers=ops), 404, "not_found")
    # A key that looks right but is not one.
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert_error(
        client.get("/documents", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized"
    )
    # The last admin key, now alone, still cannot be revoked: the API never reopens.
    assert_error(client.delete(f"/keys/{listed[0]['id']}", headers=ops), 409, "last_admin_key")
    assert_error(client.get("/documents"), 401, "unauthorized")
    assert client.get("/documents", headers=ops).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "a", "role": "admin", "collections": ["default"]}, 422, "invalid_key"),
        ({"name": "a", "role": "owner", "collections": "*"}, 422, "invalid_request"),
        ({"name": "a", "role": "reader", "collections": ["nope"]}, 404, "not_found"),
        ({"name": "a", "role": "reader", "collections": "all"}, 422, "invalid_request"),
    ],
)
def test_bad_keys_are_refused(settings, instance, body: dict, status: int, code: str) -> None:
    locked = settings.model_copy(update={"api_key": "root"})
    with TestClient(create_app(locked, instance)) as client:
        client.headers["Authorization"] = "Bearer root"
        assert_error(client.post("/keys", json=body), status, code)


def test_the_first_key_of_an_open_api_must_be_an_admin(client) -> None:
    assert_error(
        client.post("/keys", json={"name": "r", "role": "reader", "collections": ["default"]}),
        409,
        "first_key_admin",
    )
    assert client.get("/documents").status_code == 200, "still open"


def test_an_open_api_says_so_at_start_up(settings, instance, caplog) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="rag_api"),
        TestClient(create_app(settings, instance)),
    ):
        pass
    assert any("open to anyone" in r.getMessage() for r in caplog.records)
    caplog.clear()
    locked = settings.model_copy(update={"api_key": "root"})
    with (
        caplog.at_level(logging.WARNING, logger="rag_api"),
        TestClient(create_app(locked, instance)),
    ):
        pass
    assert not any("open to anyone" in r.getMessage() for r in caplog.records)


def test_rag_api_key_is_an_admin_over_every_collection(settings, instance, corpus: Path) -> None:
    locked = settings.model_copy(update={"api_key": "root"})
    with TestClient(create_app(locked, instance)) as client:
        root = {"Authorization": "Bearer root"}
        assert client.post("/collections", json={"name": "x"}, headers=root).status_code == 201
        made = client.post(
            "/keys", json={"name": "w", "role": "writer", "collections": ["x"]}, headers=root
        )
        assert made.status_code == 201
        assert client.get("/collections", headers=root).status_code == 200
        assert_error(client.get("/collections"), 401, "unauthorized")


def test_a_key_learns_its_own_role_and_collections(settings, instance) -> None:
    """GET /keys/me: what the console shows depends on it, for any key, not only an admin."""
    with TestClient(create_app(settings, instance)) as client:
        assert client.get("/keys/me").json() == {
            "id": None,
            "role": "admin",
            "collections": "*",
            "open": True,
        }
        admin = client.post("/keys", json={"name": "a", "role": "admin", "collections": "*"})
        ops = {"Authorization": f"Bearer {admin.json()['secret']}"}
        client.post("/collections", json={"name": "lab"}, headers=ops)
        reader = client.post(
            "/keys", json={"name": "r", "role": "reader", "collections": ["lab"]}, headers=ops
        ).json()
        me = client.get("/keys/me", headers={"Authorization": f"Bearer {reader['secret']}"})
        assert me.json() == {
            "id": reader["id"],
            "role": "reader",
            "collections": ["lab"],
            "open": False,
        }
        assert_error(client.get("/keys/me"), 401, "unauthorized")
