"""Operations through the API without a daemon: what is refused, and runs that wait in the queue.

The daemon's part (runs that start, schedules that tick) is in tests/test_operations_daemon.py.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

KEY = "ops-key"


@pytest.fixture()
def locked(settings: Settings, instance: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"api_key": KEY}), instance)) as c:
        yield c


OPERATIONS = [
    ("GET", "/runs/x", {}),
    ("POST", "/schedules/backup_schedule/run", {}),
]


def test_operations_need_the_key(locked) -> None:
    for method, path, body in OPERATIONS:
        assert_error(locked.request(method, path, **body), 401, "unauthorized")
    # Nothing was started by the refused requests.
    assert locked.app.state.instance.get_runs_count() == 0  # type: ignore[attr-defined]


def test_running_a_schedule_queues_its_job_and_the_run_reports_it(client) -> None:
    started = client.post("/schedules/cleanup_schedule/run")
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["job"] == "cleanup_job"
    assert started.headers["Location"] == body["status_url"] == f"/runs/{body['run_id']}"

    run = client.get(body["status_url"])
    assert run.status_code == 200, run.text
    report = run.json()
    # No daemon here: the run waits in the queue.
    assert (report["id"], report["job"], report["status"]) == (
        body["run_id"],
        "cleanup_job",
        "queued",
    )
    assert report["tags"]["rag/schedule"] == "cleanup_schedule"
    assert report["error"] is None and report["ended_at"] is None


def test_unknown_schedules_and_runs_are_404(client) -> None:
    assert_error(client.post("/schedules/nightly/run"), 404, "not_found")
    assert_error(client.get("/runs/0b5e0d52-0000-4000-8000-000000000000"), 404, "not_found")
    assert_error(client.get("/runs/..%2F..%2Fetc"), 404, "not_found")
