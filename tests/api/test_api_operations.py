"""Operations through the API without a daemon: what is refused, and runs that wait in the queue.

The daemon's part (runs that start, schedules that tick) is in
tests/orchestration/maintenance/test_operations_daemon.py.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

KEY = "ops-key"
GOOD = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture()
def locked(settings: Settings, instance: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"api_key": KEY}), instance)) as c:
        yield c


OPERATIONS = [
    ("GET", "/runs/x", {}),
    ("POST", "/schedules/backup_schedule/run", {}),
    ("PATCH", "/schedules/backup_schedule", {"json": {"running": False}}),
]


def test_operations_need_the_key(locked) -> None:
    for method, path, body in OPERATIONS:
        assert_error(locked.request(method, path, **body), 401, "unauthorized")
    # Nothing was started or changed by the refused requests.
    assert locked.app.state.instance.get_runs_count() == 0  # type: ignore[attr-defined]
    listed = {s["name"]: s for s in locked.get("/schedules", headers=GOOD).json()}
    assert listed["backup_schedule"]["status"] == "running"


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


def test_a_schedule_changes_at_once_and_keeps_the_change(settings, instance, client) -> None:
    changed = client.patch(
        "/schedules/backup_schedule", json={"cron": "30 3 * * 1-5", "timezone": "Europe/Paris"}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cron"], body["timezone"], body["status"]) == (
        "30 3 * * 1-5",
        "Europe/Paris",
        "running",
    )
    upcoming = datetime.fromisoformat(body["next_tick_at"])
    assert (upcoming.hour, upcoming.minute, upcoming.weekday() < 5) == (3, 30, True)
    assert upcoming.utcoffset() in (timedelta(hours=1), timedelta(hours=2))

    stopped = client.patch("/schedules/backup_schedule", json={"running": False}).json()
    assert (stopped["status"], stopped["next_tick_at"], stopped["cron"]) == (
        "stopped",
        None,
        "30 3 * * 1-5",
    )
    # What the Dagster UI shows: the sensor is stopped in the instance.
    [state] = [s for s in instance.all_instigator_state() if s.name == "backup_schedule"]
    assert state.status.value == "STOPPED"

    # A restarted API (a new app on the same stores) reads the same.
    with TestClient(create_app(settings, instance)) as again:
        listed = {s["name"]: s for s in again.get("/schedules").json()}
    assert (listed["backup_schedule"]["status"], listed["backup_schedule"]["cron"]) == (
        "stopped",
        "30 3 * * 1-5",
    )
    assert listed["cleanup_schedule"]["status"] == "running"
    started = client.patch("/schedules/backup_schedule", json={"running": True}).json()
    assert started["status"] == "running" and started["next_tick_at"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"cron": "61 * * * *"}, "invalid_cron"),
        ({"cron": "* * * * * *"}, "invalid_cron"),
        ({"cron": "0 0 31 4 *"}, "invalid_cron"),
        ({"cron": "x" * 121}, "invalid_request"),
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
        ({"timezone": "../../etc/passwd"}, "invalid_timezone"),
        ({}, "invalid_request"),
        ({"running": "maybe"}, "invalid_request"),
        ({"running": 1}, "invalid_request"),
        ({"paused": True}, "invalid_request"),
        # A valid half does not go through with an invalid one.
        ({"running": False, "cron": "61 * * * *"}, "invalid_cron"),
        ({"running": False, "timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
    ],
)
def test_an_invalid_change_is_422_with_the_reason_and_changes_nothing(client, body, code) -> None:
    def schedules() -> dict[str, tuple[str, str, str, str]]:
        return {
            s["name"]: (s["status"], s["cron"], s["timezone"], s["job"])
            for s in client.get("/schedules").json()
            if s["kind"] == "schedule"
        }

    before = schedules()
    assert before["cleanup_schedule"][:3] == ("running", "0 * * * *", "UTC")
    refused = assert_error(client.patch("/schedules/cleanup_schedule", json=body), 422, code)
    assert refused["error"]["message"]
    assert schedules() == before


def test_changing_an_unknown_schedule_is_404(client) -> None:
    assert_error(client.patch("/schedules/nightly", json={"running": False}), 404, "not_found")
    assert_error(
        client.patch("/schedules/landing_zone_sensor", json={"running": False}), 404, "not_found"
    )
