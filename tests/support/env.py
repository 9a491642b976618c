"""Where things are for the tests (the repo, the corpus, the venv), and how a Chroma server and
a Dagster home are set up."""

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.servers import start_server

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RAG_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
BIN = Path(sys.executable).parent
# Creates an instance's storage: run it before two processes open a fresh instance at once.
INIT_INSTANCE = "from dagster import DagsterInstance; DagsterInstance.get().dispose()"


def start_chroma(
    path: Path, log: Path | None = None, port: int | None = None, **popen: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """A Chroma server with its data at `path`, on a free loopback port or on `port` (a
    restart); returns (process, URL). `popen` goes to subprocess.Popen."""

    def launch(chosen: int) -> subprocess.Popen[bytes]:
        argv = ["run", "--path", str(path), "--host", "127.0.0.1", "--port", str(chosen)]
        with log.open("ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as out:
            return subprocess.Popen(
                [str(BIN / "chroma"), *argv], stdout=out, stderr=subprocess.STDOUT, **popen
            )

    proc, chosen = start_server(launch, "/api/v2/heartbeat", port)
    return proc, f"http://127.0.0.1:{chosen}"


PG_ENV = {
    "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
    "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
    "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
    "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
}


def make_dagster_home(home: Path, storage: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = REPO / ("dagster.yaml" if storage == "postgres" else "dagster_home/dagster.yaml")
    shutil.copyfile(config, home / "dagster.yaml")


def pg_admin() -> Any:
    """An autocommit connection to the test server's admin database, to create and drop the
    databases tests use; fails the test, saying what to do, when PostgreSQL is not up."""
    import psycopg2
    import pytest

    try:
        admin = psycopg2.connect(
            host=PG_ENV["DAGSTER_PG_HOST"],
            port=PG_ENV["DAGSTER_PG_PORT"],
            user=PG_ENV["DAGSTER_PG_USER"],
            password=PG_ENV["DAGSTER_PG_PASSWORD"],
            dbname=os.environ.get("RAG_TEST_PG_ADMIN_DB", "postgres"),
            connect_timeout=5,
        )
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); start it, e.g. with .ci/run")
    admin.autocommit = True
    return admin


@contextlib.contextmanager
def running_chroma(path: Path, log: Path | None = None) -> Iterator[str]:
    """A Chroma server with its data at `path` for the length of the block; yields its URL."""
    proc, url = start_chroma(path, log=log)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
