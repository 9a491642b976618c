"""Operations from the API against the real daemon and warm worker: a schedule's job run now.

The API runs in the test process (TestClient) on the daemon's DAGSTER_HOME and data dir; the
daemon's queue starts what it asks for on the warm worker.
"""

import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e


@pytest.fixture()
def daemon_env(daemon_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # Backups land in the test's folder, not the checkout the daemon starts in.
    return {**daemon_env, "RAG_BACKUP_DIR": str(tmp_path / "backups")}


@pytest.fixture()
def api(daemon, daemon_env, monkeypatch) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    from rag_api.main import create_app
    from rag_pipeline.settings import Settings

    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance, TestClient(create_app(Settings(), instance)) as c:
        yield c


def wait_run(client: TestClient, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = client.get(f"/runs/{run_id}").json()
        if report["status"] in ("succeeded", "failed", "canceled"):
            return report
        time.sleep(0.5)
    pytest.fail(f"run {run_id} not finished after {timeout} s: {report}")


def test_running_the_backup_schedule_writes_a_real_archive(api, daemon_env) -> None:
    started = api.post("/schedules/backup_schedule/run")
    assert started.status_code == 202, started.text
    report = wait_run(api, started.json()["run_id"])

    assert report["status"] == "succeeded", report
    archive = Path(report["metadata"]["path"])
    assert archive.parent == Path(daemon_env["RAG_BACKUP_DIR"])
    assert archive.stat().st_size == report["metadata"]["bytes"] > 0
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    assert report["started_at"] and report["ended_at"] >= report["started_at"]
