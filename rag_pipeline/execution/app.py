"""The Celery app shared by the run launcher (which sends) and the workers (which execute)."""

from pathlib import Path
from typing import Any

from celery import Celery
from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SqlaTransport

from rag_pipeline.settings import Settings

QUEUE = "dagster"


class QuickSqlaTransport(SqlaTransport):
    """Kombu's SQLAlchemy transport polling every 0.1 s instead of every second: the one-machine
    broker is an SQLite file, and a run should start within the queue's own second. (Kombu
    passes a `polling_interval` transport option on to SQLAlchemy's create_engine, which
    refuses it, hence a class.)"""

    polling_interval = 0.1


# Broker URLs `sqla-quick+<database URL>`: the default when RAG_BROKER_URL is empty.
TRANSPORT_ALIASES.setdefault("sqla-quick", f"{__name__}:QuickSqlaTransport")


def app_args(broker: str, backend: str) -> dict[str, Any]:
    return {
        "broker": broker,
        "backend": backend,
        "include": [],
        "config_source": config_source(),
        "task_default_queue": QUEUE,
    }


def config_source() -> dict[str, Any]:
    return {
        **DEFAULT_CONFIG,
        # A worker reserves only what it can start: a run never waits behind another run in a
        # worker that is busy while a second worker is idle.
        "worker_prefetch_multiplier": 1,
        # Acknowledged when it ends: a busy process holds its run's message, so the worker
        # reserves no run it cannot start (one reserved by a worker that then died would wait
        # for the start timeout). A run whose process is lost is failed by monitoring, not
        # redelivered: a redelivered run that has ended does not execute again.
        "task_acks_late": True,
        "broker_connection_retry_on_startup": True,
        # Records which worker runs a task, for the UI's debug info and for the health check.
        "result_extended": True,
        "worker_hijack_root_logger": False,
    }


def ensure_local_paths(*urls: str) -> None:
    """An SQLite broker or result backend needs its folder."""
    for url in urls:
        for prefix in ("sqla-quick+sqlite:///", "sqla+sqlite:///", "db+sqlite:///"):
            if url.startswith(prefix):
                Path(url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)


def celery_app(settings: Settings) -> Celery:
    broker, backend = settings.celery_broker_url, settings.celery_result_backend
    ensure_local_paths(broker, backend)
    app = make_app(app_args(broker, backend))  # type: ignore[no-untyped-call]
    create_execute_job_task(app)
    create_resume_job_task(app)
    # One step of a run orchestrated outside the launcher (executor.py). Acknowledged when
    # taken: a step whose worker dies is failed by its orchestrator, never redelivered to
    # execute again in a run that has ended.
    create_task(app, acks_late=False)  # type: ignore[no-untyped-call]
    return app
