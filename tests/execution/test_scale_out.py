"""The worker tier scaled out: two `rag-pipeline worker` processes and one daemon against one
broker (Redis) and one PostgreSQL server (the Dagster instance, the document registry and the
Celery result backend), as `docker compose up --scale worker=2` runs them.

One worker's whole process group is killed with SIGKILL while both execute runs, as when its
host dies. Nothing reports that loss: the run's heartbeat goes silent, run monitoring fails the
run and run retries start it again on the other worker. Every document still ends indexed,
exactly once.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.env import BIN, INIT_INSTANCE, PG_ENV, REPO, pg_admin, redis_database
from support.runs import executing, failed_at, retries_of

from bench.harness.processes import process_group, process_group_of
from rag_pipeline.core.documents.reports import DocumentStatus, document_reports
from rag_pipeline.core.retrieval.vector_index import connect
from rag_pipeline.core.storage.data_dir import DocumentStore

SQUAD = "retrieval/squad_v1.1_dev/docs"
DOCUMENTS = 24
# Small runs, so that the daemon keeps both workers busy with several in turn.
DOCS_PER_RUN = 4
# Below the 45 s default, to keep the test short; still four missed beats (one every 5 s).
LOST_AFTER_SECONDS = 20


def _pg_url(scheme: str, database: str) -> str:
    password = f":{PG_ENV['DAGSTER_PG_PASSWORD']}" if PG_ENV["DAGSTER_PG_PASSWORD"] else ""
    host, port = PG_ENV["DAGSTER_PG_HOST"], PG_ENV["DAGSTER_PG_PORT"]
    return f"{scheme}://{PG_ENV['DAGSTER_PG_USER']}{password}@{host}:{port}/{database}"


@pytest.fixture()
def registry_db() -> Iterator[str]:
    """The registry's own database on the test server (beside the instance's: their alembic
    histories would collide in one)."""
    name = f"rag_registry_{uuid.uuid4().hex[:10]}"
    admin = pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url("postgresql+psycopg2", name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture()
def broker() -> Iterator[str]:
    with redis_database() as url:
        yield url


def _drop(landing: Path, files: list[Path]) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for path in files:
        part = landing / f".{path.name}.part"
        shutil.copyfile(path, part)
        part.rename(landing / path.name)


def _busy_workers(instance, workers: dict[int, str]) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """Each worker (by process group) executing a run now, with that run."""
    busy: dict[int, str] = {}
    for run_id, (_, pid) in executing(instance).items():
        group = process_group_of(pid)
        if group in workers:
            busy[group] = run_id
    return busy


def _vector_ids(env: dict[str, str]) -> list[str]:
    collection = connect(env["RAG_CHROMA_URL"]).get_collection(env["RAG_CHROMA_COLLECTION"])
    ids: list[str] = []
    while True:
        page = collection.get(include=[], limit=5000, offset=len(ids))
        ids.extend(page["ids"])
        if len(page["ids"]) < 5000:
            return ids


@pytest.mark.e2e
@pytest.mark.parametrize(
    "daemon_env",
    [
        {
            "storage": "postgres",
            "RAG_EMBEDDING_MODEL": "hash-384",
            "RAG_MAX_DOCS_PER_RUN": str(DOCS_PER_RUN),
            "RAG_WORKER_LOST_AFTER_SECONDS": str(LOST_AFTER_SECONDS),
        }
    ],
    indirect=True,
)
def test_two_workers_share_one_broker_and_a_killed_one_loses_no_document(
    daemon_env: dict[str, str],
    registry_db: str,
    broker: str,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster import DagsterInstance

    env = {
        **daemon_env,
        "RAG_REGISTRY_URL": registry_db,
        "RAG_BROKER_URL": broker,
        "RAG_RESULT_BACKEND": _pg_url("db+postgresql+psycopg2", daemon_env["DAGSTER_PG_DB"]),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The instance's, the registry's and the result backend's tables, made once before three
    # processes race to make them.
    subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=env, check=True)
    store = DocumentStore(env["RAG_DATA_DIR"], registry_db)
    _make_result_tables(env)

    worker = [str(BIN / "rag-pipeline"), "worker", "--concurrency", "1"]
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
    logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b", "daemon")}
    files = sorted((corpus / SQUAD).glob("*.txt"))[:DOCUMENTS]
    with contextlib.ExitStack() as processes, DagsterInstance.get() as instance:
        workers = {
            processes.enter_context(process_group(worker, env, logs[name])).pid: name
            for name in ("worker-a", "worker-b")
        }
        processes.enter_context(process_group(daemon, env, logs["daemon"]))
        _drop(store.landing_dir, files)

        deadline = time.monotonic() + 240
        while len(busy := _busy_workers(instance, workers)) < 2:
            assert time.monotonic() < deadline, f"both workers never ran at once\n{_tails(logs)}"
            time.sleep(0.2)
        victim, killed_run = next(iter(busy.items()))
        killed_at = time.time()
        os.killpg(victim, signal.SIGKILL)

        reports = _wait_indexed(store, DOCUMENTS, 600, logs)
        failed = failed_at(instance, [killed_run])[killed_run]
        retries = retries_of(instance, [killed_run])[killed_run]

    assert failed is not None, f"the run on the killed {workers[victim]} was never failed"
    assert retries, f"the run on the killed {workers[victim]} was not retried"
    assert failed - killed_at < 120, "the dead worker was not noticed within 2 minutes"
    assert sorted(r.filename for r in reports) == sorted(p.name for p in files), "one file, one doc"
    assert {r.status for r in reports} == {DocumentStatus.indexed}
    catalog = {
        r.id: pq.read_metadata(store.artifact_path("chunks", r.id)).num_rows for r in reports
    }
    assert {r.id: r.chunks for r in reports} == catalog
    ids = _vector_ids(env)
    assert len(ids) == len(set(ids)) == sum(catalog.values())
    expected = {f"{doc}:{n}" for doc, count in catalog.items() for n in range(count)}
    assert set(ids) == expected, "vectors missing, or left over from the killed run"
    store.registry.close()


def _make_result_tables(env: dict[str, str]) -> None:
    """Celery's database result backend creates its tables on first use."""
    from rag_pipeline.execution.app import celery_app
    from rag_pipeline.settings import Settings

    assert Settings().result_backend == env["RAG_RESULT_BACKEND"]
    app = celery_app(Settings())
    app.backend.get_task_meta(str(uuid.uuid4()))


def _wait_indexed(store: DocumentStore, expected: int, timeout: float, logs: dict[str, Path]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    reports: list = []
    while time.monotonic() < deadline:
        reports = document_reports(store)
        if len(reports) >= expected and all(r.status == DocumentStatus.indexed for r in reports):
            return reports
        time.sleep(1)
    states = {r.id: r.status for r in reports}
    pytest.fail(f"not all indexed after {timeout} s: {states}\n{_tails(logs)}")


def _tails(logs: dict[str, Path]) -> str:
    return "\n".join(
        f"--- {name}\n{path.read_text(errors='replace')[-2000:]}"
        for name, path in logs.items()
        if path.exists()
    )
