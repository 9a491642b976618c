"""The registry's database: SQLite in WAL mode or PostgreSQL, migrated with alembic on open."""

import fcntl
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from rag_pipeline.core.registry.model import (
    LIVE,
    Document,
    Stage,
    StageState,
    documents,
    stages,
    state,
)

_MIGRATIONS = Path(__file__).parent / "migrations"
LIVE_VALUES = [s.value for s in LIVE]


def default_url(data_dir: Path | str) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'registry.db'}"


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


class Database:
    """The connection, migrations and transactions the registry's operations run in."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            path = Path(sa.engine.make_url(url).database or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit at the driver: transactions are begun here, IMMEDIATE for writes, so
            # two writers queue on the database lock instead of failing on upgrade.
            self.engine = sa.create_engine(
                url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 30}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5)
        self._upgrade()

    def close(self) -> None:
        self.engine.dispose()

    def _upgrade(self) -> None:
        head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
        with self.engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        with self._migration_lock(), self.engine.connect() as conn:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if not self.sqlite:
                conn.commit()

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Two processes opening a fresh registry at once: one migrates, the other waits."""
        if self.sqlite:
            lock_path = Path(sa.engine.make_url(self.url).database or "").with_suffix(".lock")
            with lock_path.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                yield
            return
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key("migrate")})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key("migrate")})
                conn.commit()

    @contextmanager
    def transaction(self, write: bool = False, lock: str | None = None) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
                return
            with conn.begin():
                if lock is not None:
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(lock)}
                    )
                yield conn

    def load(self, conn: sa.Connection, doc_id: str) -> Document | None:
        found = self.load_many(conn, [doc_id])
        return found[0] if found else None

    def load_row(self, conn: sa.Connection, doc_id: str) -> Document | None:
        """The document's row alone, its stages unread (all pending): one query, for callers
        that need what it is and where its bytes are, not how far it got."""
        row = conn.execute(sa.select(documents).where(documents.c.id == doc_id)).first()
        return Document.from_row(row) if row is not None else None

    def load_many(self, conn: sa.Connection, ids: Sequence[str]) -> list[Document]:
        """Rows with their stages, in the order of `ids`."""
        if not ids:
            return []
        rows = conn.execute(sa.select(documents).where(documents.c.id.in_(list(ids))))
        by_id = {row.id: Document.from_row(row) for row in rows}
        for row in conn.execute(sa.select(stages).where(stages.c.document_id.in_(list(ids)))):
            by_id[row.document_id].stages[row.stage] = Stage(
                StageState(row.state), row.at, row.run_id, row.metadata or {}
            )
        return [by_id[i] for i in ids if i in by_id]

    # Named state.

    def get_state(self, name: str) -> str | None:
        with self.transaction() as conn:
            row = conn.execute(sa.select(state.c.value).where(state.c.name == name)).first()
            return row.value if row is not None else None

    def set_state(self, name: str, value: str) -> None:
        with self.transaction(write=True, lock=f"state:{name}") as conn:
            conn.execute(state.delete().where(state.c.name == name))
            conn.execute(state.insert().values(name=name, value=value))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Part:
    """One concern's operations over the registry's shared database."""

    def __init__(self, db: Database) -> None:
        self.db = db
