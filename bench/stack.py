"""The service's processes on a temporary Dagster home and data dir, for the benchmarks that time
ingestion end to end: a Chroma server on a free port, the warm run worker, the daemon and,
when asked, the API, each in its own process group with its log beside the data.

Two execution models can be measured:
- `warm` (the shipped one): dagster_home/dagster.yaml as it is; runs execute on
  `rag-pipeline worker`, which is started and waited for until every process of it is warm.
- `default` (the one before it, for comparison): the same file without its `run_launcher`, so
  Dagster's DefaultRunLauncher spawns a process per run from the code server; no worker.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from bench.stages import MODEL, REPO, free_port, start_chroma, stop, wait_for_http

BIN = Path(sys.executable).parent
LAUNCHERS = ("warm", "default")
# Each prefork child of `rag-pipeline worker` logs this once it has loaded the code and model.
WARM_LINE = "worker process warm"
WORKER_WARM_SECONDS = 600  # two processes loading torch and the model on a busy 2-core machine
# Creates an instance's storage: several processes opening a fresh SQLite instance at once can
# leave two alembic heads behind, after which the code location never loads.
INIT_INSTANCE = "from dagster import DagsterInstance; DagsterInstance.get().dispose()"
RUN_EVENTS = ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START", "STEP_START")
END_EVENTS = ("RUN_SUCCESS", "RUN_FAILURE")  # a run with one failed document ends in failure


def write_instance(home: Path, launcher: str) -> None:
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


def start_group(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a session of its own, so `stop` takes whatever it started with it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`rag-pipeline worker`, returned once each of its processes logged that it is warm."""
    worker = start_group([str(BIN / "rag-pipeline"), "worker"], env, log)
    processes = int(env.get("RAG_WORKER_CONCURRENCY") or 2)
    deadline = time.monotonic() + WORKER_WARM_SECONDS
    while log.read_text(errors="replace").count(WARM_LINE) < processes:
        if worker.poll() is not None or time.monotonic() > deadline:
            stop(worker)
            raise RuntimeError(f"rag-pipeline worker did not warm up:\n{tail(log)}")
        time.sleep(0.5)
    return worker


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`dagster-daemon` on the project's workspace; it starts the code server itself."""
    daemon = start_group([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, log)
    deadline = time.monotonic() + 180
    # Up means one sensor tick evaluated: the code location loaded and the sensor runs.
    while "Sensor landing_zone_sensor" not in log.read_text(errors="replace"):
        if daemon.poll() is not None or time.monotonic() > deadline:
            stop(daemon)
            raise RuntimeError(f"dagster-daemon did not come up:\n{tail(log)}")
        time.sleep(0.5)
    return daemon


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`rag-api` on a free port; a port taken meanwhile by someone else means another try."""
    for _ in range(3):
        port = free_port()
        api = start_group([str(BIN / "rag-api")], {**env, "RAG_API_PORT": str(port)}, log)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health")
        except TimeoutError:
            stop(api)
            continue
        if api.poll() is None:
            return api, f"http://127.0.0.1:{port}"
    raise RuntimeError(f"rag-api did not come up:\n{tail(log)}")


class Stack:
    """Chroma at `with`; `start()` adds the worker (warm launcher), the daemon and the API.

    `env` is the environment of every process; the benchmark's own process takes it too
    (`os.environ.update(stack.env)`) to read the same instance and registry.
    """

    def __init__(self, work: Path, launcher: str = "warm", **env: str) -> None:
        self.work = work
        self.launcher = launcher
        write_instance(work / "home", launcher)
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "RAG_API_KEY"},
            "DAGSTER_HOME": str(work / "home"),
            "RAG_DATA_DIR": str(work / "data"),
            "RAG_EMBEDDING_MODEL": MODEL,
            # No key, as `make run`: the benchmark is the machine's one user.
            "RAG_OPEN_ACCESS": "true",
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = ""
        self.worker_warm_seconds: float | None = None
        self.worker_warm_cpu: float | None = None

    def __enter__(self) -> "Stack":
        chroma, url = start_chroma(self.work / "chroma")
        self.procs["chroma"] = chroma
        self.env["RAG_CHROMA_URL"] = url
        try:
            wait_for_http(f"{url}/api/v2/heartbeat")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def chroma_url(self) -> str:
        return self.env["RAG_CHROMA_URL"]

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def start(self, api: bool = False) -> None:
        subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=self.env, check=True)
        if self.launcher == "warm":
            started = time.monotonic()
            self.procs["worker"] = start_worker(self.env, self.log("worker"))
            self.worker_warm_seconds = round(time.monotonic() - started, 1)
            self.worker_warm_cpu = round(sum(group_cpu(self.procs["worker"].pid)), 2)
        self.procs["daemon"] = start_daemon(self.env, self.log("daemon"))
        if api:
            self.procs["api"], self.api_url = start_api(self.env, self.log("api"))

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

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            stop(self.procs.pop(name))


def group_cpu(pgid: int) -> tuple[float, float]:
    """(spawned, the rest) CPU seconds of a live process group, read from /proc.

    In the daemon's group, the daemon and its code servers count apart from everything they
    started: run workers under the default launcher, their extraction fork servers, and exited
    ones, reaped (cutime+cstime) or zombies (whose cmdline is empty). In any other group every
    process counts as spawned.
    """
    tick = os.sysconf("SC_CLK_TCK")
    spawned = rest = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone while we looked
        if int(stat[2]) != pgid:  # stat[2] is pgrp, field 5 of proc_pid_stat(5)
            continue
        own = (int(stat[11]) + int(stat[12])) / tick
        is_spawned = b"dagster-daemon" not in cmdline and b"api\0grpc" not in cmdline
        spawned += (int(stat[13]) + int(stat[14])) / tick + (own if is_spawned else 0.0)
        rest += 0.0 if is_spawned else own
    return round(spawned, 2), round(rest, 2)


def run_events(instance: Any, run_id: str) -> dict[str, float]:
    """When a run was queued, launched, started, stepped and ended, from its own event log."""
    from dagster import DagsterEventType

    events: dict[str, float] = {}
    wanted = {DagsterEventType[name] for name in (*RUN_EVENTS, *END_EVENTS)}
    for entry in instance.all_logs(run_id, of_type=wanted):
        name = entry.dagster_event_type.name if entry.dagster_event_type else ""
        events.setdefault("RUN_END" if name in END_EVENTS else name, entry.timestamp)
    return events


def stop_on_sigterm() -> None:
    """A SIGTERM to the benchmark raises KeyboardInterrupt, so the stack it started is stopped."""

    def _raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise_interrupt)


def provenance() -> dict[str, Any]:
    """When and on what code a figure was measured, and what else the machine was doing."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "rag_pipeline", "rag_api", "bench").strip()
    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return {
        "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": f"{commit}+uncommitted" if changed else commit,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
