"""Shared fixtures: real components at test scale.

A Chroma server on a free loopback port (one per session, a fresh collection per test), a
temporary Dagster instance that enforces pools, a temporary data dir, and corpus files. Helpers
live in tests/support/; this file holds fixtures only.
"""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.env import (
    BIN,
    CORPUS,
    INIT_INSTANCE,
    PG_ENV,
    REPO,
    make_dagster_home,
    pg_admin,
    running_chroma,
)

from bench.harness.processes import start_group, stop_all

# Each test has exactly one tier (docs/testing.md):
# - unit: starts no server, daemon, worker or command (the extraction sandbox's own child is the
#   code under test);
# - stack: starts one (Chroma, PostgreSQL, the daemon, a worker, the API or the CLI as a process);
# - e2e: runs the real embedding model; reliability and browser: their folders.
# `api` marks tests/api as well, so `make test-fast` can take its TestClient tests.
TIERS = ("unit", "stack", "e2e", "reliability", "browser")
_FOLDER_TIERS = {"console": "browser", "reliability": "reliability"}
# Fixtures that start a process of their own (directly or through another fixture).
_PROCESS_FIXTURES = {
    "chroma_url",
    "fresh_chroma",
    "postgres_db",
    "daemon",
    "daemon_env",
    "shared_stack",
    "stack",
}


def _tier(item: pytest.Item) -> str:
    folder = Path(str(item.path)).relative_to(Path(__file__).parent).parts[0]
    declared = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    if folder in _FOLDER_TIERS:
        return _FOLDER_TIERS[folder]
    if "real_model" in item.fixturenames or "e2e" in declared:
        return "e2e"
    if "stack" in declared or _PROCESS_FIXTURES & set(item.fixturenames):
        return "stack"
    if "instance" in item.fixturenames and "postgres" in item.name:
        return "stack"
    return "unit"


# Commands a unit test may run: tools the code under test calls (Tesseract), what the standard
# library's platform.architecture() asks (`file`), and what Dagster starts itself for a run
# executed in-process (it follows the step's compute logs with `tail` and watches for orphans
# with its own script), none of them a server.
_UNIT_COMMANDS = {"tesseract", "tail", "file"}
_DAGSTER_INTERNAL = "dagster/_core/execution/scripts/watch_orphans.py"


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Holds the unit tier to its definition: a unit test that starts a server, daemon, worker
    or command fails, naming it, so it can be marked `stack`."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    started: list[str] = []
    popen_init = subprocess.Popen.__init__

    def recording_init(self: subprocess.Popen[bytes], args: object, *rest: object, **kw: object):
        argv = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
        internal = any(arg.endswith(_DAGSTER_INTERNAL) for arg in argv)
        if Path(argv[0]).name not in _UNIT_COMMANDS and not internal:
            started.append(" ".join(argv)[:200])
        popen_init(self, args, *rest, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    yield
    if started:
        pytest.fail(f"a unit test started processes (mark it stack): {started}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier(item)
        declared = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if declared - {tier, "stack" if tier == "e2e" else tier}:
            raise pytest.UsageError(f"{item.nodeid}: tier {tier}, but marked {sorted(declared)}")
        item.add_marker(tier)
        top = Path(str(item.path)).relative_to(Path(__file__).parent).parts[0]
        if top == "api":
            item.add_marker("api")
        # Under pytest-xdist (`make test` runs two workers, --dist loadgroup), the tests that
        # share one session-scoped stack run on one worker, one after another, so the stack
        # starts once and stops after the last of them.
        if top in ("reliability", "clients"):
            item.add_marker(pytest.mark.xdist_group(top))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the test corpus is missing: {CORPUS} (set RAG_CORPUS_DIR)")
    return CORPUS


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("chroma")
    with running_chroma(data, log=data / "chroma.log") as url:
        yield url


@pytest.fixture()
def rag_env(tmp_path: Path, chroma_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the pipeline: a temp data dir and a fresh Chroma collection."""
    env = {
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_CHROMA_URL": chroma_url,
        "RAG_CHROMA_COLLECTION": f"test-{uuid.uuid4().hex[:12]}",
        "RAG_EMBEDDING_MODEL": "hash-384",
        "RAG_EXTRACTION_TIMEOUT_SECONDS": "20",
        # Most tests call the API without a key, as on one trusted machine; the tests of the
        # closed default (tests/api/access/test_open_access.py) turn it off.
        "RAG_OPEN_ACCESS": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture()
def real_model(monkeypatch: pytest.MonkeyPatch, rag_env: dict[str, str]) -> dict[str, str]:
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    rag_env["RAG_EMBEDDING_MODEL"] = "sentence-transformers/all-MiniLM-L6-v2"
    return rag_env


@pytest.fixture()
def postgres_db() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database for one test; PostgreSQL must be up (`.ci/run` starts it)."""
    name = f"rag_test_{uuid.uuid4().hex[:10]}"
    admin = pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**PG_ENV, "DAGSTER_PG_DB": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite"])
def instance(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A real on-disk instance under a temporary DAGSTER_HOME, with the project's dagster.yaml.

    SQLite by default; parametrize with "postgres" for the deployment form on a fresh database.
    The ephemeral instance does not enforce pools; this one does, and the CLI sees it too.
    """
    from dagster import DagsterInstance

    home = tmp_path / "dagster_home"
    make_dagster_home(home, request.param)
    if request.param == "postgres":
        for name, value in request.getfixturevalue("postgres_db").items():
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as inst:
        yield inst


@pytest.fixture()
def daemon_env(request, tmp_path: Path, chroma_url: str) -> dict[str, str]:
    params = dict(getattr(request, "param", {}))
    storage = params.pop("storage", "sqlite")
    home = tmp_path / "dagster_home"
    make_dagster_home(home, storage)
    pg = request.getfixturevalue("postgres_db") if storage == "postgres" else {}
    return {
        **os.environ,
        **pg,
        "DAGSTER_HOME": str(home),
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_CHROMA_URL": chroma_url,
        "RAG_CHROMA_COLLECTION": f"daemon-{uuid.uuid4().hex[:10]}",
        "RAG_EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
        "RAG_MAX_DOCS_PER_RUN": "4",
        "RAG_OPEN_ACCESS": "true",
        **params,
    }


@pytest.fixture()
def daemon(daemon_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The daemon, and the warm run worker its runs execute on (the worker's log goes to
    worker.log)."""
    # Create the instance before two processes race to (see scripts/run-stack.sh).
    subprocess.run([str(BIN / "python"), "-c", INIT_INSTANCE], env=daemon_env, check=True)
    commands = {
        "worker": [str(BIN / "rag-pipeline"), "worker"],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, cmd in commands.items():
            procs[name] = start_group(cmd, daemon_env, tmp_path / f"{name}.log")
        yield procs["daemon"]
    finally:
        # Both at once, and briefly: the test is over and its files are thrown away, so a
        # graceful shutdown (the daemon's threads finishing their loops) buys nothing.
        stop_all(list(procs.values()), grace_seconds=2)


RELIABILITY_REPORT = REPO / "bench" / "results" / "reliability.json"


@pytest.fixture(scope="session")
def reliability_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The reliability suite's figures; the full run publishes them, the short one keeps them
    with its temporary files."""
    from reliability.harness import FULL, REAL_MODEL

    target = RELIABILITY_REPORT if FULL else tmp_path_factory.getbasetemp() / "reliability.json"
    # A run of some of the parts (make reliability PYTEST_ARGS='-k load') updates their figures
    # and keeps the others; each part says when it ran.
    figures: dict[str, object] = json.loads(target.read_text()) if target.exists() else {}
    figures.update(
        mode="full" if FULL else "short", embedding_model=REAL_MODEL if FULL else "hash-384"
    )
    yield figures
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")


_SHARED_STACKS: list[Any] = []
RELIABILITY = Path(__file__).parent / "reliability"


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The reliability suite's stack stops after its last test (its tests run one after
    another), not at the end of the session: its daemon would tick through the rest."""
    if nextitem is None or RELIABILITY not in Path(nextitem.path).parents:
        while _SHARED_STACKS:
            _SHARED_STACKS.pop().stop()


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Chroma, the daemon and the API as separate processes, shared by the reliability suite."""
    from reliability.harness import FULL, MAX_UPLOAD_MB, REAL_MODEL, Stack

    running = Stack(
        tmp_path_factory.mktemp("stack"),
        REAL_MODEL if FULL else "hash-384",
        RAG_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
        # Processor time in the extraction child: the corpus's pathological page took pypdf
        # 11.7 s of it at a02e286 and 8.6 s at e492ec9 (on a quiet machine; at 9 s it once
        # finished in time), the longest good document (the 234-page book) 5.7 s at a02e286.
        RAG_EXTRACTION_TIMEOUT_SECONDS="7",
        RAG_MAX_DOCS_PER_RUN="16",
    )
    _SHARED_STACKS.append(running)
    try:
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture()
def stack(shared_stack: object) -> object:
    """The shared stack for one part, every process running: a part that failed after killing
    one leaves nothing down for the next (each part also audits only its own documents)."""
    shared_stack.start_all()  # type: ignore[attr-defined]
    return shared_stack


@pytest.fixture()
def backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "backups"
    monkeypatch.setenv("RAG_BACKUP_DIR", str(folder))
    return folder


@pytest.fixture()
def fresh_chroma(tmp_path: Path) -> Iterator[str]:
    """An empty Chroma server that never shared files with the one the data was indexed in."""
    with running_chroma(tmp_path / "fresh-chroma") as url:
        yield url


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[object]:
    """An empty data dir with its landing zone, and its SQLite registry."""
    from rag_pipeline.core.storage.data_dir import DocumentStore

    store = DocumentStore(tmp_path / "data")
    store.landing_dir.mkdir(parents=True)
    yield store
    store.registry.close()
