"""The one-machine instance storage (rag_pipeline/execution/storage.py): Dagster's SQLite layout
with pooled event-log connections and batches in one transaction."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance

from rag_pipeline.execution.storage import PooledSqliteEventLogStorage


def _home(path: Path) -> Path:
    from support.env import make_dagster_home

    make_dagster_home(path, "sqlite")
    return path


def _count(instance: DagsterInstance, key: str = "notes") -> int:
    return len(instance.fetch_materializations(AssetKey(key), limit=100).records)


def test_an_instance_opened_by_path_reads_its_own_files(tmp_path: Path, monkeypatch) -> None:
    ours, elsewhere = _home(tmp_path / "ours"), _home(tmp_path / "elsewhere")
    monkeypatch.setenv("DAGSTER_HOME", str(elsewhere))
    with DagsterInstance.from_config(str(ours)) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        instance.report_runless_asset_event(AssetMaterialization("notes", partition="a"))
    assert (ours / "history" / "runs" / "index.db").exists()
    assert not (elsewhere / "history" / "runs" / "index.db").exists()
    with DagsterInstance.from_config(str(ours)) as again:
        assert _count(again) == 1
    with DagsterInstance.get() as other:
        assert _count(other) == 0


@pytest.mark.stack
def test_a_long_lived_reader_sees_what_another_process_wrote(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as reader:
        assert _count(reader) == 0  # its connection is open and pooled from here on
        writer = textwrap.dedent(
            f"""
            from dagster import AssetMaterialization, DagsterInstance
            with DagsterInstance.from_config({str(home)!r}) as instance:
                for n in range(3):
                    instance.report_runless_asset_event(
                        AssetMaterialization("notes", partition=f"p{{n}}")
                    )
            """
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        subprocess.run([sys.executable, "-c", writer], check=True, env=env)
        assert _count(reader) == 3


def test_a_batch_is_stored_whole(tmp_path: Path) -> None:
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry

    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        entries = [
            EventLogEntry(
                error_info=None,
                level="DEBUG",
                user_message="",
                run_id="batch-run",
                timestamp=1_800_000_000.0 + n,
                dagster_event=DagsterEvent(
                    DagsterEventType.ASSET_MATERIALIZATION.value,
                    "job",
                    event_specific_data=StepMaterializationData(
                        AssetMaterialization("notes", partition=f"p{n}")
                    ),
                ),
            )
            for n in range(50)
        ]
        instance.event_log_storage.store_event_batch(entries)
        assert _count(instance) == 50
        assert len(instance.get_records_for_run("batch-run").records) == 50


def _step_event(kind: str, n: int, step_key: str | None = "ingest_documents"):  # type: ignore[no-untyped-def]
    from dagster._core.events import (
        DagsterEvent,
        DagsterEventType,
        StepMaterializationData,
        StepSuccessData,
    )
    from dagster._core.events.log import EventLogEntry

    data = (
        StepMaterializationData(AssetMaterialization("notes", partition=f"p{n}"))
        if kind == "materialization"
        else StepSuccessData(duration_ms=1.0)
    )
    event_type = (
        DagsterEventType.ASSET_MATERIALIZATION
        if kind == "materialization"
        else DagsterEventType.STEP_SUCCESS
    )
    return EventLogEntry(
        error_info=None,
        level="DEBUG",
        user_message="",
        run_id="behind-run",
        timestamp=1_800_000_000.0 + n,
        step_key=step_key,
        dagster_event=DagsterEvent(
            event_type.value, "job", step_key=step_key, event_specific_data=data
        ),
    )


def test_a_steps_document_events_are_written_behind_in_order(tmp_path: Path) -> None:
    """Per-document events are held for a moment and written in one transaction; any other
    event (the step's success) writes them first, so the log's order is the order they came."""
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        for n in range(5):
            storage.store_event(_step_event("materialization", n))
        storage.store_event(_step_event("success", 5))
        records = instance.get_records_for_run("behind-run").records
        assert [r.event_log_entry.timestamp for r in records] == [
            1_800_000_000.0 + n for n in range(6)
        ]
        assert records[-1].event_log_entry.dagster_event_type.value == "STEP_SUCCESS"
        # The asset's row names its last materialization, as writing them one by one would.
        latest = instance.get_latest_materialization_event(AssetKey("notes"))
        assert latest is not None and latest.timestamp == 1_800_000_000.0 + 4
        assert _count(instance) == 5

        # Held behind: the write-behind thread flushes under the storage's order lock, so while
        # the test holds it the event cannot be written, however slow the machine.
        with storage._order:
            storage.store_event(_step_event("materialization", 6))
            assert _count(instance) == 5
        # ... and written by that thread on its own, with nothing after it (30 s is only when
        # to give up waiting).
        deadline = time.monotonic() + 30
        while _count(instance) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _count(instance) == 6


def test_events_held_behind_are_written_when_the_instance_closes(tmp_path: Path) -> None:
    home = _home(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.store_event(_step_event("materialization", 0))
    with DagsterInstance.from_config(str(home)) as again:
        assert _count(again) == 1


def test_a_document_that_failed_in_a_range_run_shows_failed(
    tmp_path: Path, monkeypatch, corpus: Path
) -> None:
    """A range run plans its documents in one event per asset; the partition status the UI
    reads still marks the document that failed, and only it."""
    from support.runs import add_files, copy_corpus, materialize

    home = _home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "hash-384")
    files = [
        copy_corpus(corpus, rel, tmp_path / "in")
        for rel in ("text/uns_norwich-city.txt", "pdf_problem/uns_password.pdf")
    ]
    with DagsterInstance.get() as instance:
        good, bad = add_files(instance, files)
        result = materialize(instance, [good, bad], ["raw_document", "document_text"])
        assert not result.success
        planned = [
            e
            for e in instance.get_records_for_run(result.run_id).records
            if e.event_log_entry.dagster_event_type == "ASSET_MATERIALIZATION_PLANNED"
        ]
        assert len(planned) == 2, "one planned event per asset for the whole range"
        storage = instance.event_log_storage
        attempts = (
            storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                AssetKey("document_text")
            )
        )
    assert set(attempts) == {bad}
    assert attempts[bad][0] == result.run_id
