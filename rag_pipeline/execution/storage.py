"""The one-machine instance storage: Dagster's SQLite storage, with an event log that keeps its
database connections instead of opening a new engine for every event.

Dagster's `SqliteEventLogStorage` builds an engine, connects, commits and disposes for each
write, several times per asset event (the run's shard, then the cross-run index). Measured at
c7cc0f2 on this machine: 25 ms per event, 98 of the 139 s a 300-abstract run took, where the
embedding work itself takes a few seconds. Keeping an engine per shard (a few, least recently
used first out) and writing in WAL mode with `synchronous=NORMAL` (a process killed at any point
loses nothing; only a power cut can lose the last commits, and the database stays consistent)
makes the same event cost a fraction of that. Everything else is Dagster's own code and layout:
the same files, readable by any Dagster process.

In `dagster.yaml` (runs and schedules keep Dagster's default SQLite storage):

    event_log_storage:
      module: rag_pipeline.execution.storage
      class: PooledSqliteEventLogStorage
"""

import atexit
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster import AssetKey, DagsterInstance, Field, RunsFilter, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import _event_logs_directory
from dagster._serdes import ConfigurableClassData, deserialize_value
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Dagster batches the event writes it can (a run's planned events, a partition range's
# materializations) only when this is set; the store_event_batch below makes a batch one
# transaction per shard. An explicit setting wins.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
# A range run's planned materializations as one event per asset with the range, instead of one
# per document and asset (five per document, written by the daemon when it creates the run:
# 57,000 events for 11,429 abstracts). Dagster's own switch; an explicit setting wins.
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")

# Shards whose engines stay open: the index and the runs being written right now.
_OPEN_SHARDS = 8
_BUSY_TIMEOUT_SECONDS = 30

# A step's per-document events (five materializations and three check evaluations for each
# document) are written behind, in batches: at most this many, at most this long after the
# first of them, and always before any other event (a step's success, a run's end), so the
# order of the log never changes. Measured at 4d66d79: writing them one by one was a third of
# a warm worker's CPU on 3,000 abstracts. A process killed outright loses at most the last
# fraction of a second of this UI history; what a document's status says lives in the
# registry, and the run that was killed is failed and retried.
_WRITE_BEHIND = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.ASSET_OBSERVATION,
    }
)
_WRITE_BEHIND_EVENTS = 256
_WRITE_BEHIND_SECONDS = 0.5


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Without a `base_dir`, the event log lives where Dagster's default puts it, under the
    instance's own directory: an instance opened by path (`DagsterInstance.from_config(home)`,
    a restore into another home) reads its own files, whatever DAGSTER_HOME says."""

    def __init__(
        self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None
    ) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._batch = threading.local()
        self._tables: set[str] = set()
        # Events written behind (see _WRITE_BEHIND); `_order` keeps the log's order.
        self._behind: list[EventLogEntry] = []
        self._order = threading.RLock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flush_at_exit = False
        # A forked child (a prefork worker) starts with no events behind and free locks.
        after_fork = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())
        self._pending_inst_data = inst_data
        self._located = base_dir is not None
        if base_dir is not None:
            super().__init__(base_dir, inst_data)

    def register_instance(self, instance: DagsterInstance) -> None:
        if not self._located:
            # Where Dagster's default SQLite storage keeps the event log of this instance.
            super().__init__(
                _event_logs_directory(instance.root_directory), self._pending_inst_data
            )
            self._located = True
        super().register_instance(instance)

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key: AssetKey, after_storage_id: int | None = None
    ) -> Mapping[str, tuple[str, int]]:
        """What the UI's partition status reads to mark a partition in progress or failed: its
        latest planned materialization with no materialization since. Dagster finds only the
        planned events of one partition each; a range run here plans its documents in one
        event (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS), so those are expanded too, and
        a document that failed in a run still shows failed."""
        found = dict(
            super().get_latest_asset_partition_materialization_attempts_without_materializations(
                asset_key, after_storage_id
            )
        )
        table = SqlEventLogStorageTable
        query = db.select(table.c.id, table.c.run_id, table.c.event).where(
            table.c.asset_key == asset_key.to_string(),
            table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value,
            table.c.partition.is_(None),
        )
        if after_storage_id is not None:
            query = query.where(table.c.id > after_storage_id)
        planned: dict[str, tuple[str, int]] = {}
        with self.index_connection() as conn:
            for event_id, run_id, raw in conn.execute(query.order_by(table.c.id)):
                event = deserialize_value(raw, EventLogEntry).dagster_event
                data = event.event_specific_data if event is not None else None
                subset = getattr(data, "partitions_subset", None)
                if subset is None:
                    continue
                for key in subset.get_partition_keys():
                    planned[key] = (run_id, event_id)
            if not planned:
                return found
            planned = self._only_picked(planned)
            materialized: dict[str, int] = {}
            keys = list(planned)
            for start in range(0, len(keys), 5000):
                rows = conn.execute(
                    db.select(table.c.partition, db.func.max(table.c.id))
                    .where(
                        table.c.asset_key == asset_key.to_string(),
                        table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
                        table.c.partition.in_(keys[start : start + 5000]),
                    )
                    .group_by(table.c.partition)
                )
                materialized.update({partition: last for partition, last in rows})
        for key, (run_id, event_id) in planned.items():
            if materialized.get(key, -1) > event_id:
                continue  # materialized since it was planned
            if key not in found or found[key][1] < event_id:
                found[key] = (run_id, event_id)
        return found

    def _only_picked(self, planned: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
        """A run over documents picked one by one (a retry) plans the range from the first to
        the last, and runs only those it names: it was never planned for the others."""
        from rag_pipeline.orchestration.partitions import PICKED_SOURCES, named_documents

        run_ids = {run_id for run_id, _ in planned.values()}
        picked = {
            run.run_id: set(named_documents(run.tags) or ())
            for run in self._instance.get_runs(
                RunsFilter(run_ids=list(run_ids), tags={"rag/source": list(PICKED_SOURCES)})
            )
        }
        return {
            key: (run_id, event_id)
            for key, (run_id, event_id) in planned.items()
            if run_id not in picked or key in picked[run_id]
        }

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: Any
    ) -> "PooledSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": _BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", _pragmas)
            self._engines[shard] = engine
            while len(self._engines) > _OPEN_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    def _ready_engine(self, shard: str) -> Engine:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:  # type: ignore[override]
        batch: dict[str, Connection] | None = getattr(self._batch, "connections", None)
        if batch is not None:
            # Inside store_event_batch: this thread already holds the lock, and every write
            # to a shard joins that shard's one transaction.
            if shard not in batch:
                conn = self._ready_engine(shard).connect()
                conn.begin()
                batch[shard] = conn
            yield batch[shard]
            return
        with self._db_lock, self._ready_engine(shard).connect() as conn, conn.begin():
            yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every asset check event, with a new engine each time; a table
        that exists stays."""
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        """Dagster inspects the table's columns before every asset event; they stay."""
        if "asset_key_index_cols" not in self._tables:
            if not super()._has_asset_key_index_cols_on_connection(conn):
                return False
            self._tables.add("asset_key_index_cols")
        return True

    def _store_asset_event(self, conn: Connection, event: EventLogEntry, event_id: int) -> None:
        """In a batch, an asset's row (its latest event of each kind) is written once, from the
        last of its events: the same row as writing each event's in turn."""
        latest: dict[tuple[Any, Any], tuple[EventLogEntry, int]] | None = getattr(
            self._batch, "asset_rows", None
        )
        if latest is None:
            super()._store_asset_event(conn, event, event_id)
            return
        dagster_event = event.get_dagster_event()
        kind = (dagster_event.asset_key, dagster_event.event_type)
        latest.pop(kind, None)  # keeps the order of each kind's last event
        latest[kind] = (event, event_id)

    def store_event(self, event: EventLogEntry) -> None:
        if getattr(self._batch, "connections", None) is not None:
            super().store_event(event)  # inside store_event_batch
            return
        with self._order:
            # A step's events only: one reported outside a run is read back at once.
            if event.dagster_event_type in _WRITE_BEHIND and event.step_key:
                self._behind.append(event)
                if len(self._behind) >= _WRITE_BEHIND_EVENTS:
                    self.flush()
                else:
                    self._start_flusher()
                return
            self.flush()
            super().store_event(event)

    def flush(self) -> None:
        """Write the events held behind, in one transaction per shard."""
        self.store_event_batch([])

    def _after_fork(self) -> None:
        self._behind = []
        self._order = threading.RLock()
        self._wake = threading.Event()
        self._flusher = None

    def _start_flusher(self) -> None:
        self._wake.set()
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(
                target=self._flush_loop, name="event-log-write-behind", daemon=True
            )
            self._flusher.start()
            if not self._flush_at_exit:
                atexit.register(self.flush)
                self._flush_at_exit = True

    def _flush_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(_WRITE_BEHIND_SECONDS)
            try:
                self.flush()
            except Exception:  # logged; the step goes on
                logging.getLogger(__name__).exception("writing events behind failed")

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch in one transaction per shard, instead of three or four per event. Dagster
        sends batches (the planned events of a run, a range's materializations) when
        DAGSTER_EVENT_BATCH_SIZE is set, and the events written behind; the ones held behind
        go first, so the log keeps its order. On an error the events are stored one by one."""
        with self._order:
            events, self._behind = [*self._behind, *events], []
            if not events:
                return
            try:
                self._store_in_one_transaction(events)
            except Exception:  # as Dagster's own fallback does
                for entry in events:
                    super().store_event(entry)

    def _store_in_one_transaction(self, events: Sequence[EventLogEntry]) -> None:
        with self._db_lock:
            connections: dict[str, Connection] = {}
            self._batch.connections = connections
            self._batch.asset_rows = {}
            try:
                for entry in events:
                    self.store_event(entry)
                latest, self._batch.asset_rows = self._batch.asset_rows, None
                if latest:
                    with self.index_connection() as conn:
                        for entry, event_id in latest.values():
                            super()._store_asset_event(conn, entry, event_id)
                for conn in connections.values():
                    conn.commit()
            finally:
                self._batch.connections = None
                self._batch.asset_rows = None
                for conn in connections.values():
                    conn.close()  # rolls back whatever was not committed

    def dispose(self) -> None:
        self.flush()
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()
