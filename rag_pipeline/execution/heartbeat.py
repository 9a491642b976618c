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
# What beats: the process executing (or orchestrating) a whole run, or a warm worker executing
# one step of a run orchestrated elsewhere (see executor.py).
RUN = "run"
STEP = "step"
# Any warm worker's main process, every INTERVAL_SECONDS: "a worker is alive to take steps".
_WORKER_SEEN = "rag/warm_worker_seen"

_in_warm_worker = False


def mark_warm_worker() -> None:
    global _in_warm_worker
    _in_warm_worker = True


def in_warm_worker() -> bool:
    return _in_warm_worker


def _key(run_id: str, kind: str = RUN) -> str:
    return f"rag/{kind}_heartbeat/{run_id}"


def beat(instance: DagsterInstance, run_id: str, at: float, kind: str = RUN) -> None:
    instance.run_storage.set_cursor_values({_key(run_id, kind): repr(at)})


def _read_time(instance: DagsterInstance, key: str) -> float | None:
    value = instance.run_storage.get_cursor_values({key}).get(key)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def last_beat(instance: DagsterInstance, run_id: str, kind: str = RUN) -> float | None:
    return _read_time(instance, _key(run_id, kind))


def worker_seen(instance: DagsterInstance, at: float) -> None:
    instance.run_storage.set_cursor_values({_WORKER_SEEN: repr(at)})


def worker_last_seen(instance: DagsterInstance) -> float | None:
    return _read_time(instance, _WORKER_SEEN)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Beats for one run (or one step of it) from a daemon thread, from before it starts until
    it ends."""

    def __init__(self, instance: DagsterInstance, run_id: str, kind: str = RUN) -> None:
        self._instance = instance
        self._run_id = run_id
        self._kind = kind
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> None:
        beat(self._instance, self._run_id, time.time(), self._kind)
        self._instance.add_run_tags(self._run_id, {WORKER_TAG: worker_name()})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=INTERVAL_SECONDS * 2)

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                beat(self._instance, self._run_id, time.time(), self._kind)
            except Exception:  # a storage hiccup costs one beat, not the thread
                log.warning("heartbeat for run %s failed", self._run_id, exc_info=True)
