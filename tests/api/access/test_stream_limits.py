"""GET /documents/{id}/events under a key: the stream ends soon after its key is revoked, and
a key holds at most RAG_SSE_MAX_STREAMS_PER_KEY streams at once.

The document is uploaded and never ingested, so its stream stays open (keep-alives only) for
as long as the server lets it: whatever ends it is the key check.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.sse import open_events

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

ROOT = {"Authorization": "Bearer root"}
LIMIT = 2


@pytest.fixture()
def api(settings: Settings, instance: object) -> Iterator[TestClient]:
    closed = settings.model_copy(
        update={
            "api_key": "root",
            "open_access": False,
            "events_key_recheck_seconds": 0.2,
            "sse_max_streams_per_key": LIMIT,
        }
    )
    with TestClient(create_app(closed, instance)) as client:
        yield client


def _queued(client: TestClient, corpus: Path) -> str:
    posted = client.post(
        "/documents", files=[upload(corpus, "markdown/haystack_sample.md")], headers=ROOT
    )
    assert posted.status_code == 202, posted.text
    url: str = posted.json()["documents"][0]["status_url"]
    return url


def _reader(client: TestClient, name: str) -> tuple[str, dict[str, str]]:
    made = client.post(
        "/keys", json={"name": name, "role": "reader", "collections": ["default"]}, headers=ROOT
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], {"Authorization": f"Bearer {made.json()['secret']}"}


def test_a_stream_ends_within_seconds_of_its_key_being_revoked(api, corpus: Path) -> None:
    url = _queued(api, corpus)
    key_id, reader = _reader(api, "follower")
    # Each wait below fails the test after 5 s: "within a few seconds" is the claim.
    with open_events(api, url, timeout=5, headers=reader) as stream:
        assert stream.next_status()["status"] == "queued"
        stream.next_comment()  # still open, as long as the key stands
        assert api.delete(f"/keys/{key_id}", headers=ROOT).status_code == 204
        ended = stream.next_event()
        assert ended.event == "error", ended
        assert ended.data["error"]["code"] == "unauthorized", ended
        stream.assert_closed()


def test_a_key_holds_at_most_its_share_of_streams(api, corpus: Path) -> None:
    url = _queued(api, corpus)
    _, first = _reader(api, "first")
    _, second = _reader(api, "second")
    with (
        open_events(api, url, timeout=10, headers=first) as one,
        open_events(api, url, timeout=10, headers=first) as two,
    ):
        one.next_status()
        two.next_status()
        # Streamed, so that a stream let in by mistake fails here instead of hanging.
        with api.stream("GET", f"{url}/events", headers=first) as third:
            assert third.status_code == 429, "a third stream was let in"
            third.read()
            refused = assert_error(third, 429, "too_many_streams")
        assert "RAG_SSE_MAX_STREAMS_PER_KEY" in refused["error"]["message"]
        # Another key has its own share.
        with open_events(api, url, timeout=10, headers=second) as other:
            assert other.next_status()["status"] == "queued"
    # The slots come back once the streams are gone: a new one opens (the server notices a
    # client gone at its next keep-alive, so this retries until it does, or fails at 10 s).
    deadline = time.monotonic() + 10
    while True:
        with api.stream("GET", f"{url}/events", headers=first) as response:
            if response.status_code == 200:
                break
            assert response.status_code == 429, response.read()
        assert time.monotonic() < deadline, "the key's stream slots never came back"
