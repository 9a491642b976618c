"""The service's processes for one temporary folder, as `make run` starts them: a Chroma server,
the warm run worker (`rag-pipeline worker`), the Dagster daemon and the API, each in a process
group of its own with its log beside the data. The benchmarks time ingestion on it, and the
reliability suite kills its processes (or their whole groups) and starts them again on the same
ports and data.

Two execution models can be run:
- `warm` (the shipped one): dagster_home/dagster.yaml as it is; runs execute on
  `rag-pipeline worker`.
- `default` (the one before it, for comparison): the same file without its `run_launcher`, so
  Dagster's DefaultRunLauncher spawns a process per run from the code server; no worker.
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from bench.harness.processes import (
    BIN,
    REPO,
    chroma_command,
    group_cpu,
    in_groups,
    signal_group,
    start_group,
    start_server,
    tail,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LAUNCHERS = ("warm", "default")
# Started in this order: the worker before the daemon, so the first runs find it.
PROCESSES = ("chroma", "worker", "daemon", "api")
# Each prefork child of `rag-pipeline worker` logs this once it has loaded the code and model.
WARM_LINE = "worker process warm"
WORKER_WARM_SECONDS = 600  # two processes loading torch and the model on a busy 2-core machine
# Up means one sensor tick evaluated: the code location loaded and the sensor runs.
DAEMON_UP_LINE = "Sensor landing_zone_sensor"
DAEMON_UP_SECONDS = 180
# Creates an instance's storage: several processes opening a fresh SQLite instance at once can
# leave two alembic heads behind, after which the code location never loads.
INIT_INSTANCE = "from dagster import DagsterInstance; DagsterInstance.get().dispose()"
RUN_EVENTS = ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START", "STEP_START")
END_EVENTS = ("RUN_SUCCESS", "RUN_FAILURE")  # a run with one failed document ends in failure


def write_instance(home: Path, launcher: str) -> None:
    """The shipped dagster.yaml in `home`, without its run launcher for `default`."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, not {launcher!r}")
    home.mkdir(parents=True, exist_ok=True)
    text = (REPO / "dagster_home" / "dagster.yaml").read_text()
    if launcher == "default":
        config = yaml.safe_load(text)
        del config["run_launcher"]
        text = "# bench: the shipped instance without its run launcher (DefaultRunLauncher)\n"
        text += yaml.safe_dump(config, sort_keys=False)
    (home / "dagster.yaml").write_text(text)


class Stack:
    """Chroma, the run worker, the daemon and the API for one folder (`root`): the data dir in
    `data`, the Dagster home in `home`, Chroma's files in `chroma`, each process's log in
    `<name>.log`. Nothing runs until `start` or `start_all`; leaving the `with` block (or
    `stop`) stops every process group it ever started.

    `env` is the environment of every process; a benchmark's own process takes it too
    (`os.environ.update(stack.env)`) to read the same instance and registry. Without an
    `api_key` the API is open, as `make run` leaves it: the benchmark is the machine's one user.

    With `wait_warm`, starting the worker returns once each of its processes is warm, and
    starting the daemon once its sensor has ticked: the benchmarks time from there. The
    reliability suite starts them without waiting, since how soon a restart recovers is part
    of what it measures.
    """

    def __init__(
        self,
        root: Path,
        model: str = MODEL,
        launcher: str = "warm",
        api_key: str | None = None,
        wait_warm: bool = True,
        **env: str,
    ) -> None:
        self.root = root
        self.data = root / "data"
        self.home = root / "home"
        self.chroma_dir = root / "chroma"
        self.launcher = launcher
        self.wait_warm = wait_warm
        write_instance(self.home, launcher)
        access = {"RAG_API_KEY": api_key} if api_key else {"RAG_OPEN_ACCESS": "true"}
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "RAG_API_KEY"},
            "DAGSTER_HOME": str(self.home),
            "RAG_DATA_DIR": str(self.data),
            "RAG_EMBEDDING_MODEL": model,
            **access,
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Chosen at the first start; a restart binds the same one, as clients know it.
        self.ports: dict[str, int] = {}
        # Every process group ever started: a killed daemon leaves its code server behind.
        self.groups: list[int] = []
        self.initialised = False
        self.worker_warm_seconds: float | None = None
        self.worker_warm_cpu: float | None = None

    def __enter__(self) -> "Stack":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def processes(self) -> tuple[str, ...]:
        """Every process of this stack, in the order they start."""
        return tuple(p for p in PROCESSES if p != "worker" or self.launcher == "warm")

    @property
    def chroma_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['chroma']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def command(self, name: str, port: int | None = None) -> list[str]:
        if name == "chroma" and port is not None:
            return chroma_command(self.chroma_dir, port)
        if name == "daemon":
            return [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")]
        if name == "worker":
            return [str(BIN / "rag-pipeline"), "worker"]
        if name == "api":
            return [str(BIN / "rag-api")]
        raise ValueError(name)

    def _launch(self, name: str, port: int | None = None) -> subprocess.Popen[bytes]:
        if name == "chroma":
            self.env["RAG_CHROMA_URL"] = f"http://127.0.0.1:{port}"
        elif name == "api":
            self.env["RAG_API_PORT"] = str(port)
        proc = start_group(self.command(name, port), self.env, self.log(name))
        self.groups.append(proc.pid)
        return proc

    def start(self, name: str) -> None:
        """Start one process; Chroma and the API on their port of before, or a free one."""
        if name == "chroma" or name == "api":
            ready, timeout = (
                ("/api/v2/heartbeat", 60) if name == "chroma" else (self._api_ready, 120)
            )
            self.procs[name], self.ports[name] = start_server(
                lambda port: self._launch(name, port), ready, self.ports.get(name), timeout=timeout
            )
            return
        if not self.initialised:
            # A fresh SQLite instance initialised by the daemon, its code server and the API at
            # the same moment can end up with two alembic heads and never load: create it first.
            subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=self.env, check=True)
            self.initialised = True
        logged = self.log(name).stat().st_size if self.log(name).exists() else 0
        started = time.monotonic()
        self.procs[name] = self._launch(name)
        if not self.wait_warm:
            return
        if name == "worker":
            processes = int(self.env.get("RAG_WORKER_CONCURRENCY") or 2)
            self._await_line(name, logged, WARM_LINE, processes, WORKER_WARM_SECONDS)
            self.worker_warm_seconds = round(time.monotonic() - started, 1)
            self.worker_warm_cpu = round(sum(group_cpu(self.procs[name].pid)), 2)
        else:
            self._await_line(name, logged, DAEMON_UP_LINE, 1, DAEMON_UP_SECONDS)

    def _await_line(self, name: str, offset: int, line: str, count: int, timeout: float) -> None:
        """Until the process's log, past `offset`, holds `line` `count` times."""
        deadline = time.monotonic() + timeout
        while True:
            with self.log(name).open("rb") as log:
                log.seek(offset)
                if log.read().decode(errors="replace").count(line) >= count:
                    return
            if not self.alive(name) or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come up:\n{tail(self.log(name))}")
            time.sleep(0.5)

    @property
    def _api_ready(self) -> str:
        # /health answers 200 only while every store is up; the API alone (a benchmark of
        # uploads or status reads, without Chroma) is up once it serves its schema.
        return "/health" if "chroma" in self.procs else "/openapi.json"

    def start_all(self, api: bool = True) -> None:
        """Start every process that is not running (the API only with `api`), in order."""
        for name in self.processes:
            if (api or name != "api") and not (name in self.procs and self.alive(name)):
                self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL the process itself, as the OOM killer would; its children live on."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def kill_group(self, *names: str) -> None:
        """SIGKILL each named process and everything in its group at once, as when their host
        or container dies: the daemon with its code server, the worker with its warm
        processes and their extraction children."""
        procs = [self.procs[name] for name in names]
        for proc in procs:
            signal_group(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        groups = [proc.pid for proc in procs]
        while any(True for _ in in_groups(groups)) and time.monotonic() < deadline:
            time.sleep(0.1)  # children die a moment after their group's signal

    def kill_pid(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self, *names: str, grace_seconds: float = 30) -> None:
        """Stop the named processes with their groups, or every group this stack ever started:
        SIGTERM, then SIGKILL what is left after the grace period."""
        groups = [self.procs[name].pid for name in names] if names else self.groups
        procs = [self.procs.pop(name) for name in names] if names else list(self.procs.values())
        for pgid in reversed(groups):
            signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for pgid in groups:
            signal_group(pgid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)

    def instance(self) -> Any:
        from dagster import DagsterInstance

        return DagsterInstance.from_config(str(self.home))

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each process group, with run execution on its own: the
        worker's processes less their warm-up, or under the default launcher the processes the
        code server spawned per run. (Under the warm launcher the daemon spawns no runs: what
        its group reaped is code servers it replaced.)"""
        spawned, daemon = group_cpu(self.procs["daemon"].pid)
        if "worker" in self.procs:
            worker = sum(group_cpu(self.procs["worker"].pid)) - (self.worker_warm_cpu or 0.0)
            runs, daemon = worker, daemon + spawned
        else:
            runs = spawned
        figures = {
            "run_workers": round(runs, 2),
            "daemon_and_code_server": round(daemon, 2),
            "chroma": round(sum(group_cpu(self.procs["chroma"].pid)), 2),
        }
        if "api" in self.procs:
            figures["api"] = round(sum(group_cpu(self.procs["api"].pid)), 2)
        return figures


def run_events(instance: Any, run_id: str) -> dict[str, float]:
    """When a run was queued, launched, started, stepped and ended, from its own event log."""
    from dagster import DagsterEventType

    events: dict[str, float] = {}
    wanted = {DagsterEventType[name] for name in (*RUN_EVENTS, *END_EVENTS)}
    for entry in instance.all_logs(run_id, of_type=wanted):
        name = entry.dagster_event_type.name if entry.dagster_event_type else ""
        events.setdefault("RUN_END" if name in END_EVENTS else name, entry.timestamp)
    return events
