"""GET /metrics: read with prometheus-client's own text parser, each metric moving when the
thing it measures happens (uploads, ingestion, a failure, searches, an event stream, runs and
heartbeats as the workers write them)."""

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.api import assert_error, upload
from support.runs import ingest_landed
from support.sse import open_events

from rag_api.main import create_app
from rag_pipeline.execution.heartbeat import WORKER_TAG, beat, worker_seen
from rag_pipeline.orchestration.assets import STAGES
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

ADMIN = "metrics-admin-key"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture()
def admin(settings: Settings, instance: object) -> Iterator[TestClient]:
    """The API with a real admin key, sent on every request."""
    keyed = settings.model_copy(update={"api_key": ADMIN})
    with TestClient(
        create_app(keyed, instance), headers={"Authorization": f"Bearer {ADMIN}"}
    ) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_each_metric_moves_when_what_it_measures_happens(
    admin: TestClient, instance, settings: Settings, corpus: Path
) -> None:
    before = scrape(admin)
    assert value(before, "rag_run_slots") == 2, "max_concurrent_runs of the instance"
    assert math.isnan(value(before, "rag_worker_heartbeat_age_seconds")), "no worker yet"

    uploaded = admin.post(
        "/documents",
        files=[
            upload(corpus, "text/uns_norwich-city.txt"),
            upload(corpus, "pdf_problem/uns_password.pdf"),
        ],
    )
    assert uploaded.status_code == 202, uploaded.text
    [good, locked] = uploaded.json()["documents"]
    queued = scrape(admin)
    assert value(queued, "rag_documents", collection="default", status="queued") == 2
    assert value(queued, "rag_queue_documents") == 2

    # The stream stays open while the locked PDF waits, and ends when it fails.
    with open_events(admin, locked["status_url"]) as stream:
        assert stream.next_status()["status"] == "queued"
        assert value(scrape(admin), "rag_sse_streams_open") == 1
        ingest_landed(instance, str(settings.data_dir))
        while stream.next_status()["status"] != "failed":
            pass
        stream.assert_closed()
    ingested = scrape(admin)
    assert value(ingested, "rag_sse_streams_open") == 0
    assert value(ingested, "rag_documents", collection="default", status="indexed") == 1
    assert value(ingested, "rag_documents", collection="default", status="failed") == 1
    assert value(ingested, "rag_queue_documents") == 0
    for stage in STAGES:
        count = value(ingested, "rag_stage_duration_seconds_count", stage=stage)
        assert count == value(before, "rag_stage_duration_seconds_count", stage=stage) + (
            2 if stage == "raw_document" else 1
        ), stage
    assert value(ingested, "rag_stage_duration_seconds_sum", stage="document_text") > 0
    failed = ("rag_stage_failures_total", {"stage": "document_text", "code": "password_required"})
    assert value(ingested, failed[0], **failed[1]) == 1
    assert value(scrape(admin), failed[0], **failed[1]) == 1, "an event is counted once"

    for mode in ("lexical", "dense", "hybrid"):
        found = admin.get("/search", params={"q": "Norwich City", "mode": mode})
        assert found.status_code == 200 and found.json()["results"], found.text
        assert found.json()["results"][0]["document_id"] == good["id"]
    searched = scrape(admin)
    for mode in ("lexical", "dense", "hybrid"):
        assert value(searched, "rag_search_duration_seconds_count", mode=mode) == 1, mode

    # Runs and heartbeats, written the way the launcher and the warm workers write them.
    from dagster import DagsterRun, DagsterRunStatus

    running, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    started = DagsterRunStatus.STARTED
    instance.add_run(
        DagsterRun(job_name="ingest_job", run_id=running, status=started, tags={WORKER_TAG: "w:1"})
    )
    instance.add_run(DagsterRun(job_name="ingest_job", run_id=waiting))  # created, not started
    beat(instance, running, time.time() - 30)
    worker_seen(instance, time.time() - 10)
    busy = scrape(admin)
    assert value(busy, "rag_run_slots_in_use") == 1
    assert value(busy, "rag_runs_queued") == 1
    assert value(busy, "rag_run_heartbeat_age_seconds", run_id=running, worker="w:1") >= 30
    assert 10 <= value(busy, "rag_worker_heartbeat_age_seconds") < 30


def test_metrics_need_an_admin_key_unless_made_public(
    admin: TestClient, settings: Settings, instance
) -> None:
    reader = admin.post("/keys", json={"name": "r", "role": "reader", "collections": ["default"]})
    assert reader.status_code == 201, reader.text
    secret = reader.json()["secret"]

    assert_error(admin.get("/metrics", headers={"Authorization": ""}), 401, "unauthorized")
    assert_error(
        admin.get("/metrics", headers={"Authorization": f"Bearer {secret}"}), 403, "forbidden"
    )

    public = settings.model_copy(update={"api_key": ADMIN, "metrics_public": True})
    with TestClient(create_app(public, instance)) as anyone:
        assert anyone.get("/metrics").status_code == 200
