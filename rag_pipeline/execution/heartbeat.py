"""A run's heartbeat: the process executing a run writes the time every few seconds, in the
Dagster instance's own key-value store, and run monitoring fails the run once it stops.

A worker can die in ways the worker engine never reports: SIGKILL of the whole worker, its
host gone, a container restarted. A run's task then reads `STARTED` forever in any result
backend. The heartbeat is written by the very process that executes the run, so it stops with
it, whatever took it away.

A cancel (from the UI, or `dagster run terminate`) marks the run CANCELING; the ingest step
looks for that between documents and stops (assets.CancelWatch), so the warm process lives on.
A signal would not do: Dagster turns an interrupt in a step with a retry policy into a retry.
"""

import logging
import os
import socket
import threading
import time

from dagster import DagsterInstance

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
WORKER_TAG = "rag/worker"


def _key(run_id: str) -> str:
    return f"rag/run_heartbeat/{run_id}"


def beat(instance: DagsterInstance, run_id: str, at: float) -> None:
    instance.run_storage.set_cursor_values({_key(run_id): repr(at)})


def last_beat(instance: DagsterInstance, run_id: str) -> float | None:
    value = instance.run_storage.get_cursor_values({_key(run_id)}).get(_key(run_id))
    try:
        return float(value) if value else None
    except ValueError:
        return None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Beats for one run from a daemon thread, from before the run starts until it ends."""

    def __init__(self, instance: DagsterInstance, run_id: str) -> None:
        self._instance = instance
        self._run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> None:
        beat(self._instance, self._run_id, time.time())
        self._instance.add_run_tags(self._run_id, {WORKER_TAG: worker_name()})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=INTERVAL_SECONDS * 2)

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                beat(self._instance, self._run_id, time.time())
            except Exception:  # a storage hiccup costs one beat, not the thread
                log.warning("heartbeat for run %s failed", self._run_id, exc_info=True)
