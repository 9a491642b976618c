"""GET /health and GET /schedules."""

import os

import pytest
from fastapi.testclient import TestClient
from support.env import pg_admin

from rag_api.main import create_app

pytest_plugins = ["support.api"]


def test_health_and_schedules(client, settings, instance) -> None:
    import time

    health = client.get("/health")
    assert health.status_code == 200 and health.json()["checks"] == {
        "instance": "ok",
        "index": "ok",
    }
    assert health.json()["status"] == "ok"
    # Start-up loads the model and the lexical index in the background, then says so.
    deadline = time.monotonic() + 120
    while not client.get("/health").json()["warm"]:
        assert time.monotonic() < deadline, "the API never said it was warm"
        time.sleep(0.1)
    listed = {i["name"]: i for i in client.get("/schedules").json()}
    assert listed["landing_zone_sensor"]["kind"] == "sensor"
    assert listed["landing_zone_sensor"]["status"] == "running"

    broken = settings.model_copy(update={"chroma_url": "http://127.0.0.1:9"})
    with TestClient(create_app(broken, instance)) as bad:
        response = bad.get("/health")
    assert response.status_code == 503 and response.json()["checks"]["index"].startswith("error")


@pytest.mark.slow
@pytest.mark.parametrize("instance", ["postgres"], indirect=True)
def test_health_is_503_when_the_instance_database_is_gone(client) -> None:
    assert client.get("/health").json()["checks"]["instance"] == "ok"
    admin = pg_admin()
    try:
        with admin.cursor() as cur:
            # FORCE ends the instance's open connections too: nothing of it is left to answer.
            cur.execute(f'DROP DATABASE "{os.environ["DAGSTER_PG_DB"]}" WITH (FORCE)')
    finally:
        admin.close()

    health = client.get("/health")

    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "degraded" and body["checks"]["index"] == "ok"
    assert body["checks"]["instance"].startswith("error: "), body


def test_the_schedules_and_the_sensors_run_by_default(client) -> None:
    from dagster import DefaultSensorStatus

    from rag_pipeline.definitions import defs

    sensors = {s.name: s.default_status for s in defs.sensors or []}
    assert sensors == {
        "landing_zone_sensor": DefaultSensorStatus.RUNNING,
        # Bucket sources sync on their own; with none configured, a tick does nothing.
        "sources_sensor": DefaultSensorStatus.RUNNING,
        "backup_schedule": DefaultSensorStatus.RUNNING,
        "cleanup_schedule": DefaultSensorStatus.RUNNING,
    }
    # A fresh instance, where nobody has started or stopped anything, says the same.
    listed = {i["name"]: i for i in client.get("/schedules").json()}
    assert set(listed) == set(sensors)
    assert all(i["status"] == "running" for i in listed.values()), listed
    assert listed["backup_schedule"]["kind"] == "schedule"
    assert (listed["backup_schedule"]["cron"], listed["backup_schedule"]["job"]) == (
        "0 2 * * *",
        "backup_job",
    )
    assert all(listed[name]["next_tick_at"] for name in ("backup_schedule", "cleanup_schedule"))
