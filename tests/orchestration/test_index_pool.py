"""The index-write pool: one writer of the Chroma collection at a time, and a slot whose holder
died is taken over rather than waited for forever."""

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.pipeline import (
    pending_on_pool,
    reports_by_id,
    vector_index,
    wait_until_pending_on_pool,
)
from support.runs import add_files, copy_corpus, materialize

from rag_pipeline.orchestration.resources import (
    DEAD_HOLDER_CHECK_SECONDS,
    INDEX_WRITE_POOL,
    api_holder_id,
    free_dead_holders,
    index_write_slot,
)

RUN_STEP = "ingest_documents"


@pytest.fixture()
def workers(instance) -> Iterator[list[threading.Thread]]:
    """Threads a test starts. After a failed assert one may still wait for the pool or write:
    the pool is freed and every thread joined before the instance is disposed."""
    started: list[threading.Thread] = []
    yield started
    storage = instance.event_log_storage
    for slot in storage.get_concurrency_info(INDEX_WRITE_POOL).claimed_slots:
        storage.free_concurrency_slots_for_run(slot.run_id)
    for thread in started:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in started), "a worker outlived its test"


def _start_run(
    instance, doc: str, workers: list[threading.Thread]
) -> tuple[threading.Thread, list[bool]]:
    """Materialize the document in a thread; the list gets the run's success when it ends."""
    outcome: list[bool] = []
    worker = threading.Thread(
        target=lambda: outcome.append(materialize(instance, [doc]).success), daemon=True
    )
    workers.append(worker)
    worker.start()
    return worker, outcome


def _holders(instance) -> list[str]:
    info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
    return [str(slot.run_id) for slot in info.claimed_slots]


def test_index_writes_wait_for_the_pool(
    instance, rag_env, corpus: Path, tmp_path: Path, workers: list[threading.Thread]
) -> None:
    [doc] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])

    with index_write_slot(instance, "another-writer", "test"):
        worker, outcome = _start_run(instance, doc, workers)
        waiting = wait_until_pending_on_pool(instance, RUN_STEP)
        # The run got as far as its index write and waits there, with nothing written.
        assert reports_by_id(rag_env)[doc]["stages"]["chunk_embeddings"]["state"] == "materialized"
        assert vector_index(rag_env).count(doc) == 0
        info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
        assert info.slot_count == 1
        assert _holders(instance) == ["another-writer"]
        assert waiting in pending_on_pool(instance, RUN_STEP)
    worker.join(timeout=60)
    assert outcome == [True], "the run did not finish once the pool was free"
    assert reports_by_id(rag_env)[doc]["status"] == "indexed"


def test_a_slot_left_by_a_dead_run_is_taken_over(
    instance, rag_env, corpus: Path, tmp_path: Path, workers: list[threading.Thread]
) -> None:
    """A run worker killed while writing never frees its slot; its retry must not wait forever."""
    from dagster import DagsterRun, DagsterRunStatus

    [doc] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    holder = DagsterRun(
        job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
    )
    instance.add_run(holder)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(INDEX_WRITE_POOL)
    claim = storage.claim_concurrency_slot(INDEX_WRITE_POOL, holder.run_id, "ingest_documents")
    assert claim.is_claimed
    worker, outcome = _start_run(instance, doc, workers)
    waiting = wait_until_pending_on_pool(instance, RUN_STEP)
    # Well past the dead-holder check: a holder whose run is still going keeps its slot, and
    # the run is still there waiting for it.
    time.sleep(3 * DEAD_HOLDER_CHECK_SECONDS)
    assert _holders(instance) == [holder.run_id], "the slot was taken from a live writer"
    assert waiting in pending_on_pool(instance, RUN_STEP)
    assert instance.get_run_by_id(holder.run_id).status == DagsterRunStatus.STARTED

    # What the code server reports when it finds the worker's process gone.
    instance.report_run_failed(instance.get_run_by_id(holder.run_id))
    worker.join(timeout=60)
    assert outcome == [True], "the run still waits for the slot of a run that failed"
    assert reports_by_id(rag_env)[doc]["status"] == "indexed"
    info = storage.get_concurrency_info(INDEX_WRITE_POOL)
    assert not info.claimed_slots and not info.pending_steps


@pytest.mark.stack
def test_a_slot_left_by_a_killed_api_process_is_taken_over(
    instance, workers: list[threading.Thread]
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(INDEX_WRITE_POOL)
    live, dead = api_holder_id(), api_holder_id().replace(f"-{os.getpid()}-", f"-{gone.pid}-")
    assert storage.claim_concurrency_slot(INDEX_WRITE_POOL, live, "delete").is_claimed
    assert free_dead_holders(instance, "someone-else") == []
    storage.free_concurrency_slot_for_step(live, "delete")

    assert storage.claim_concurrency_slot(INDEX_WRITE_POOL, dead, "delete").is_claimed
    me, held = api_holder_id(), []

    def delete() -> None:
        with index_write_slot(instance, me, "delete"):
            held.extend(
                s.run_id for s in storage.get_concurrency_info(INDEX_WRITE_POOL).claimed_slots
            )

    worker = threading.Thread(target=delete, daemon=True)
    workers.append(worker)
    worker.start()
    worker.join(timeout=30)
    assert held == [me], "the slot of an API process that is gone was never freed"
