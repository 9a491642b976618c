"""`rag-pipeline worker`: a Celery worker that executes Dagster runs in warm processes.

Each prefork child imports the code location and loads the embedding model once, when it
starts, so a run pays for neither; extraction's fork server is started then too. Each run's
child beats its heartbeat for as long as the run executes (see `heartbeat.py`).

Start as many as the machine (or the cluster) holds, all against one broker and one Dagster
instance: `rag-pipeline worker --concurrency 2`.
"""

import logging
import multiprocessing
import os
import threading
import time
from typing import Any

from celery import signals
from dagster import DagsterInstance
from dagster._grpc.types import ExecuteRunArgs, ExecuteStepArgs, ResumeRunArgs
from dagster._serdes import unpack_value

from rag_pipeline.execution import heartbeat
from rag_pipeline.execution.app import QUEUE, celery_app
from rag_pipeline.execution.heartbeat import Heartbeat
from rag_pipeline.settings import get_settings

log = logging.getLogger("rag_pipeline.worker")

_beats: dict[str, Heartbeat] = {}
_instance: DagsterInstance | None = None


def _what_runs(kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """The run a task executes, and whether it is the whole run or one step of it."""
    packed = kwargs.get("execute_job_args_packed") or kwargs.get("resume_job_args_packed")
    if packed is not None:
        args = unpack_value(packed, as_type=(ExecuteRunArgs, ResumeRunArgs))
        return str(args.run_id), heartbeat.RUN
    packed = kwargs.get("execute_step_args_packed")
    if packed is not None:
        return str(unpack_value(packed, as_type=ExecuteStepArgs).run_id), heartbeat.STEP
    return None


def _the_instance() -> DagsterInstance:
    global _instance
    if _instance is None:
        _instance = DagsterInstance.get()
    return _instance


def _allow_children() -> None:
    """Lets a prefork child start extraction's bounded child. Billiard marks its children
    daemonic, and multiprocessing refuses to start children from a daemonic process; the mark
    only governs that refusal and reaping at exit, and the sandbox reaps its children itself.
    Billiard's auth key also refuses to be pickled for the fork server: a fresh
    multiprocessing key replaces it."""
    me: Any = multiprocessing.current_process()  # billiard's process object, in a prefork child
    me._config["daemon"] = False
    me._config["authkey"] = multiprocessing.process.AuthenticationString(  # type: ignore[attr-defined]
        os.urandom(32)
    )


@signals.worker_process_init.connect
def _warm(**_: Any) -> None:
    """Everything a run would otherwise load on its hot path."""
    started = time.perf_counter()
    heartbeat.mark_warm_worker()
    _allow_children()
    from rag_pipeline.core.stages.embedders import get_embedder
    from rag_pipeline.core.stages.extract import start_sandbox
    from rag_pipeline.definitions import defs

    settings = get_settings()
    defs.get_repository_def()  # builds the job and its asset graph once
    get_embedder(
        settings.embedding_model, settings.embedding_batch_size, settings.endpoint_specs()
    ).embed_documents(["warm up"])
    start_sandbox()
    _the_instance()
    log.info("worker process warm in %.1f s", time.perf_counter() - started)


class _Presence:
    """The worker's main process says it is alive every few seconds, in the Dagster instance:
    a run orchestrated elsewhere hands its step to the workers only when one is (executor.py)."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="worker-presence", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        instance = DagsterInstance.get()
        while True:
            try:
                heartbeat.worker_seen(instance, time.time())
            except Exception:
                log.warning("could not record this worker as alive", exc_info=True)
            if self._stop.wait(heartbeat.INTERVAL_SECONDS):
                return


_presence = _Presence()


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    _presence.start()


@signals.worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _presence.stop()


@signals.task_prerun.connect
def _run_starts(task_id: str, kwargs: dict[str, Any], **_: Any) -> None:
    what = _what_runs(kwargs or {})
    if what is None:
        return
    beat = Heartbeat(_the_instance(), *what)
    beat.start()
    _beats[task_id] = beat


@signals.task_postrun.connect
def _run_ends(task_id: str, **_: Any) -> None:
    beat = _beats.pop(task_id, None)
    if beat is not None:
        beat.stop()


def main(concurrency: int | None = None, loglevel: str = "INFO") -> None:
    settings = get_settings()
    if settings.worker_nice > 0:
        # Before the prefork children start: they, and what they start, inherit it.
        os.nice(settings.worker_nice)
    app = celery_app(settings)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={QUEUE}",
            f"--hostname=rag-worker-{os.getpid()}@%h",
            # No broadcast traffic: the SQLite broker has no fanout, and health comes from the
            # runs' own heartbeats.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
