"""GET /documents/{id}/events: one `status` event per change, in order, closing at a terminal
state (indexed, failed, deleted, rejected), with keep-alive comments while nothing changes.

The test drives ingestion itself, one stage per run, and waits for each stage's event before
the next: every event the stream must send is known, and nothing waits on a timer.
"""

import itertools
from pathlib import Path

from support.api import land_rejected, take_into_partitions, upload
from support.runs import ingest_landed, materialize
from support.sse import open_events

from rag_pipeline.orchestration.assets import STAGES

pytest_plugins = ["support.api"]

TERMINAL = {"indexed", "failed", "deleted", "rejected"}


def _states(event: dict) -> list[str]:
    return [event["stages"][stage]["state"] for stage in STAGES]


def test_every_stage_is_one_event_in_order_until_indexed(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[upload(corpus, "markdown/haystack_sample.md")]).json()[
        "documents"
    ][0]
    with open_events(client, doc["status_url"]) as stream:
        events = [stream.next_status()]
        assert events[0]["status"] == "queued"
        assert _states(events[0]) == ["pending"] * len(STAGES)
        take_into_partitions(instance, settings.data_dir)

        for done, stage in enumerate(STAGES, start=1):
            assert materialize(instance, [doc["id"]], stages=[stage]).success, stage
            # While the run is going the stream may also catch the stage in progress.
            while "in_progress" in _states(event := stream.next_status()):
                events.append(event)
            events.append(event)
            assert _states(event) == ["materialized"] * done + ["pending"] * (len(STAGES) - done)
            assert event["status"] == ("indexed" if done == len(STAGES) else "processing")
        stream.assert_closed()

    assert all(e["id"] == doc["id"] for e in events)
    for before, after in itertools.pairwise(events):
        assert (before["status"], _states(before)) != (after["status"], _states(after)), after
    for event in events:
        states = _states(event)
        if "in_progress" in states:
            running = states.index("in_progress")
            waiting = len(STAGES) - 1 - running
            assert states == ["materialized"] * running + ["in_progress"] + ["pending"] * waiting
            assert event["status"] == "processing"
    assert events[-1]["chunks"] > 0 and events[-1]["indexed_at"]


def test_the_stream_closes_when_the_document_fails(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[upload(corpus, "pdf_problem/uns_password.pdf")]).json()[
        "documents"
    ][0]
    with open_events(client, doc["status_url"]) as stream:
        events = [stream.next_status()]
        ingest_landed(instance, str(settings.data_dir))
        while events[-1]["status"] not in TERMINAL:
            events.append(stream.next_status())
        stream.assert_closed()

    statuses = [e["status"] for e in events]
    assert statuses[0] == "queued" and statuses[-1] == "failed", statuses
    assert set(statuses[1:-1]) <= {"processing"}, statuses
    assert events[-1]["error"]["code"] == "password_required"


def test_the_stream_closes_when_the_document_is_deleted(client, corpus: Path) -> None:
    doc = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    with open_events(client, doc["status_url"]) as stream:
        assert stream.next_status()["status"] == "queued"
        assert client.delete(doc["status_url"]).status_code == 204
        deleted = stream.next_status()
        assert (deleted["id"], deleted["status"]) == (doc["id"], "deleted")
        stream.assert_closed()


def test_a_rejected_file_is_one_event_and_the_end(client, instance, settings, corpus) -> None:
    data = (corpus / "text/uns_empty.txt").read_bytes()
    rejected = land_rejected(instance, settings.data_dir, "empty.txt", data)

    with open_events(client, f"/documents/{rejected['id']}") as stream:
        event = stream.next_status()
        assert (event["id"], event["status"]) == (rejected["id"], "rejected")
        assert event["error"]["code"] == "empty_file"
        stream.assert_closed()


def test_keep_alive_comments_while_nothing_changes(client, settings, corpus: Path) -> None:
    doc = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    # Well under FastAPI's own 15 s ping, which says `ping`, not `keep-alive`.
    timeout = 20 * settings.events_keepalive_seconds
    with open_events(client, doc["status_url"], timeout=timeout) as stream:
        assert stream.next_status()["status"] == "queued"
        assert [stream.next_comment() for _ in range(3)] == ["keep-alive"] * 3
        # Keep-alives are not changes: the next event is the real one.
        assert client.delete(doc["status_url"]).status_code == 204
        assert stream.next_status()["status"] == "deleted"
        stream.assert_closed()
