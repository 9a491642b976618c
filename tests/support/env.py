"""Where things are for the tests (the repo, the corpus and the venv, as bench/harness finds them),
and how the servers, databases and a Dagster home the tests use are set up."""

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness.corpus import CORPUS as CORPUS
from bench.harness.processes import BIN, REPO, start_chroma, start_server
from bench.harness.stack import INIT_INSTANCE as INIT_INSTANCE

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


# The broker server of the scale-out tests (`.ci/run` starts it).
REDIS_URL = "redis://127.0.0.1:6379"
_REDIS_CLAIM = "rag-test-claimed-by"


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """An empty database of the Redis server, claimed for the block; yields its URL.

    Other tests and stacks may share the server: a database counts as free only while it is
    empty, and is taken with a claim key set only if absent, so two tests never take the same
    one. Every key in it after that is this test's, and they are deleted at the end. Database
    0, everyone's default, is never taken. Fails the test, saying what to do, when Redis is
    not up."""
    import pytest
    import redis

    server = redis.Redis.from_url(f"{REDIS_URL}/0", socket_connect_timeout=5)
    try:
        count = int(server.config_get("databases")["databases"])
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start it, e.g. with .ci/run")
    finally:
        server.close()
    token = f"{os.getpid()}:{time.time()}"
    for number in range(count - 1, 0, -1):
        db = redis.Redis.from_url(f"{REDIS_URL}/{number}")
        try:
            if db.dbsize() == 0 and db.set(_REDIS_CLAIM, token, nx=True, ex=24 * 3600):
                try:
                    yield f"{REDIS_URL}/{number}"
                finally:
                    db.flushdb()
                return
        finally:
            db.close()
    pytest.fail(f"every Redis database of {REDIS_URL} but 0 holds keys: none is free to claim")


@contextlib.contextmanager
def running_chroma(path: Path, log: Path | None = None) -> Iterator[str]:
    """A Chroma server with its data at `path` for the length of the block; yields its URL."""
    proc, url = start_chroma(path, log=log)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def running_api(
    env: dict[str, str], log_path: Path, api_key: str, timeout: float = 60.0
) -> Iterator[str]:
    """`rag-api` served by uvicorn with `env` and RAG_API_KEY, for the length of the block;
    yields its URL. Its start-up may take `timeout` seconds."""
    with log_path.open("wb") as log:

        def launch(port: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [str(BIN / "rag-api")],
                cwd=REPO,
                env={**env, "RAG_API_PORT": str(port), "RAG_API_KEY": api_key},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        proc, port = start_server(launch, "/health", timeout=timeout)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
