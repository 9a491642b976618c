"""The registry on SQLite and on PostgreSQL: registration, dedupe, pickup, projection, reads."""

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from rag_pipeline.core.registry import STAGES, DocumentStatus, Registry, StageState, default_url


def _register(reg: Registry, doc_id: str, sha: str = "a" * 64, **extra: object):  # type: ignore[no-untyped-def]
    options = {"filename": f"{doc_id}.txt", "sha256": sha, "size": 3, "origin": "upload"}
    options.update(extra)
    return reg.lifecycle.register(doc_id, source_path=f"/in/{doc_id}", **options)  # type: ignore[arg-type]


def test_a_document_registers_once_and_reads_back_queued(registry: Registry) -> None:
    doc, created = _register(registry, "a-1", chunk_size=100)
    again, created_again = _register(registry, "a-1")
    assert created and not created_again
    assert again.registered_at == doc.registered_at
    found = registry.reads.get("a-1")
    assert found is not None
    assert (found.status, found.collection, found.chunk_size) == ("queued", "default", 100)
    assert {s: found.stages[s].state for s in STAGES} == dict.fromkeys(STAGES, "pending")


def test_the_same_bytes_under_another_name_are_the_same_document_when_deduped(
    registry: Registry,
) -> None:
    _register(registry, "first-1", sha="b" * 64)
    doc, created = _register(registry, "second-1", sha="b" * 64, dedupe_by_content=True)
    assert not created and doc.id == "first-1"
    other, created = _register(registry, "third-1", sha="b" * 64)
    assert created and other.id == "third-1"  # the landing zone keeps names apart


def test_concurrent_uploads_of_identical_bytes_make_one_document(registry: Registry) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def upload(n: int) -> None:
        try:
            doc, _ = _register(registry, f"copy-{n}", sha="c" * 64, dedupe_by_content=True)
            results.append(doc.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(results) == 8 and len(set(results)) == 1
    assert registry.reads.page()[1] == 1


def test_a_deleted_document_registered_again_starts_a_new_life(registry: Registry) -> None:
    _register(registry, "d-1")
    registry.projection.start(["d-1"], "run-1", STAGES)
    registry.projection.stage_done("d-1", "raw_document", "run-1", {"bytes": 3})
    assert registry.lifecycle.retire("d-1", "deleted through the API") is not None
    assert registry.reads.partitions_to_release() == ["d-1"]
    assert registry.lifecycle.retire("d-1", "again") is None
    gone = registry.reads.get("d-1")
    assert gone is not None and gone.status == "deleted" and gone.deleted_at is not None
    doc, created = _register(registry, "d-1")
    assert created and doc.status == "queued"
    assert registry.reads.partitions_to_release() == []  # the partition is the new life's
    assert doc.stages["raw_document"].state == "pending" and doc.deleted_at is None


def test_pickup_claims_each_waiting_document_once_and_never_a_deleted_one(
    registry: Registry,
) -> None:
    for n in range(3):
        _register(registry, f"p-{n}", sha=str(n) * 64)
    _register(registry, "cli-1", sha="9" * 64, submitted=True)  # its caller adds the partition
    registry.lifecycle.retire("p-1", "deleted before pickup")
    claimed = [doc.id for doc in registry.lifecycle.claim_for_pickup(now=100.0)]
    assert claimed == ["p-0", "p-2"]
    assert registry.lifecycle.claim_for_pickup(now=101.0) == []
    assert sorted(registry.reads.submitted_after(99.0)) == ["p-0", "p-2"]
    # The tick that claimed them was lost: claim one again.
    assert [doc.id for doc in registry.lifecycle.claim_for_pickup(200.0, again=["p-2"])] == ["p-2"]
    registry.lifecycle.unclaim(["p-0"])
    assert [doc.id for doc in registry.lifecycle.claim_for_pickup(now=300.0)] == ["p-0"]


def test_the_projection_follows_a_run_to_indexed(registry: Registry) -> None:
    _register(registry, "x-1")
    registry.projection.start(["x-1"], "run-1", STAGES)
    doc = registry.reads.get("x-1")
    assert doc is not None and doc.status == "processing" and doc.run_id == "run-1"
    assert doc.stages["vector_index"].state == "in_progress"
    for stage in STAGES:
        registry.projection.stage_done(
            "x-1", stage, "run-1", {"chunks": 4} if "chunks" in stage else {}
        )
    registry.projection.finish(["x-1"], "run-1")
    doc = registry.reads.get("x-1")
    assert doc is not None
    assert (doc.status, doc.chunks, doc.indexed_at is not None) == ("indexed", 4, True)
    assert all(doc.stages[s].state == StageState.materialized for s in STAGES)


def test_a_stage_done_for_many_documents_at_once_reads_as_done_one_by_one(
    registry: Registry,
) -> None:
    for doc_id in ("m-1", "m-2", "m-3", "one"):
        _register(registry, doc_id)
    registry.projection.start(["m-1", "m-2", "m-3", "one"], "run-1", STAGES)
    registry.lifecycle.retire("m-3", "deleted through the API")
    for stage in STAGES:
        chunks = "chunks" in stage
        registry.projection.stages_done(
            stage,
            "run-1",
            {
                d: {"chunks": n} if chunks else {"n": n}
                for n, d in ((2, "m-1"), (5, "m-2"), (7, "m-3"))
            },
        )
        registry.projection.stage_done("one", stage, "run-1", {"chunks": 2} if chunks else {"n": 2})
    registry.projection.finish(["m-1", "m-2", "one"], "run-1")
    one, first, second, gone = registry.reads.documents(["one", "m-1", "m-2", "m-3"])

    def row(doc):  # type: ignore[no-untyped-def]
        stages = {
            s: (x.state, x.run_id, x.metadata, x.at is not None) for s, x in doc.stages.items()
        }
        return (doc.status, doc.chunks, doc.indexed_at is not None, stages)

    assert row(first) == row(one)
    assert row(second)[:3] == ("indexed", 5, True)
    assert second.stages["vector_index"].metadata == {"n": 5}
    assert gone.status == DocumentStatus.deleted, "a document deleted meanwhile stays deleted"
    assert gone.stages.get("vector_index") is None or gone.stages["vector_index"].state != (
        StageState.materialized
    )


def test_a_failed_stage_fails_the_document_and_a_rerun_clears_the_error(
    registry: Registry,
) -> None:
    _register(registry, "f-1")
    registry.projection.start(["f-1"], "run-1", STAGES)
    registry.projection.stage_done("f-1", "raw_document", "run-1", {})
    registry.projection.stage_failed("f-1", "document_text", "run-1", "no_text_layer", "a scan")
    registry.projection.finish(["f-1"], "run-1")
    doc = registry.reads.get("f-1")
    assert doc is not None and doc.status == "failed"
    assert (doc.error_stage, doc.error_code, doc.error_message) == (
        "document_text",
        "no_text_layer",
        "a scan",
    )
    # Left by the failed run: not in progress any more, and raw_document stays materialized.
    assert doc.stages["chunk_embeddings"].state == "pending"
    assert doc.stages["raw_document"].state == "materialized"
    registry.projection.start(["f-1"], "run-2", STAGES[1:])
    registry.projection.finish(["f-1"], "run-2")
    doc = registry.reads.get("f-1")
    assert doc is not None and doc.error_code is None
    assert doc.stages["document_text"].state == "pending"
    assert doc.status == DocumentStatus.processing  # raw_document is done, the rest is not


def test_a_partial_rerun_of_an_indexed_document_leaves_it_indexed(registry: Registry) -> None:
    _register(registry, "r-1")
    registry.projection.start(["r-1"], "run-1", STAGES)
    for stage in STAGES:
        registry.projection.stage_done("r-1", stage, "run-1", {})
    registry.projection.finish(["r-1"], "run-1")
    indexed_at = registry.reads.get("r-1").stages["vector_index"].at  # type: ignore[union-attr]
    registry.projection.start(["r-1"], "run-2", ["chunk_embeddings", "vector_index"])
    assert registry.reads.get("r-1").status == "processing"  # type: ignore[union-attr]
    registry.projection.finish(["r-1"], "run-2")  # the run died before either stage finished
    doc = registry.reads.get("r-1")
    assert doc is not None and doc.status == "indexed"
    assert doc.stages["vector_index"].at == indexed_at


def test_a_run_that_stopped_fails_only_its_own_unfinished_documents(registry: Registry) -> None:
    for doc_id in ("s-1", "s-2", "s-3", "s-4"):
        _register(registry, doc_id, sha=doc_id[-1] * 64)
    registry.projection.start(["s-1", "s-2"], "run-1", STAGES)
    registry.projection.stage_done("s-1", "raw_document", "run-1", {})
    for stage in STAGES:
        registry.projection.stage_done("s-2", stage, "run-1", {})
    registry.projection.start(["s-3"], "run-2", STAGES)  # taken on by another run since
    ids = ["s-1", "s-2", "s-3", "s-4"]
    assert registry.projection.run_stopped(ids, "run-1", "run stopped", created_at=0.0) == []
    failed = registry.projection.run_stopped(ids, "run-1", "run stopped", created_at=time.time())
    assert sorted(failed) == ["s-1", "s-4"]
    s1 = registry.reads.get("s-1")
    assert s1 is not None and (s1.error_stage, s1.error_code) == ("document_text", "run_failed")
    assert registry.reads.get("s-2").status == "indexed"  # type: ignore[union-attr]
    assert registry.reads.get("s-3").status == "processing"  # type: ignore[union-attr]


def test_the_projection_never_revives_a_deleted_document(registry: Registry) -> None:
    _register(registry, "g-1")
    registry.projection.start(["g-1"], "run-1", STAGES)
    registry.lifecycle.retire("g-1", "deleted mid-run")
    registry.projection.stage_done("g-1", "vector_index", "run-1", {})
    registry.projection.stage_failed("g-1", "document_text", "run-1", "x", "y")
    registry.projection.finish(["g-1"], "run-1")
    assert registry.reads.get("g-1").status == "deleted"  # type: ignore[union-attr]


def test_pages_are_in_arrival_order_and_filter_by_status(registry: Registry) -> None:
    for n in range(7):
        _register(registry, f"o-{n}", sha=str(n) * 64)
    registry.lifecycle.reject(
        "bad-1", filename="bad.bin", code="unsupported_type", message="no", origin="landing"
    )
    registry.projection.start(["o-3"], "run-1", STAGES)
    registry.projection.stage_failed(
        "o-3", "raw_document", "run-1", "checksum_mismatch", "bytes changed"
    )
    page, total = registry.reads.page(limit=3, offset=2)
    assert total == 8 and [d.id for d in page] == ["o-2", "o-3", "o-4"]
    failed, total_failed = registry.reads.page(DocumentStatus.failed)
    assert total_failed == 1 and failed[0].error_code == "checksum_mismatch"
    rejected, _ = registry.reads.page(DocumentStatus.rejected)
    assert [(d.id, d.error_code) for d in rejected] == [("bad-1", "unsupported_type")]
    assert registry.lifecycle.forget("bad-1") and registry.reads.get("bad-1") is None


def test_a_landing_path_names_the_live_document_registered_from_it(registry: Registry) -> None:
    _register(registry, "v1-1", sha="1" * 64, origin="landing", landing_path="team/report.txt")
    _register(registry, "v2-2", sha="2" * 64, origin="landing", landing_path="team/report.txt")
    found = registry.reads.live_at_landing_path("team/report.txt")
    assert found is not None and found.id == "v2-2"
    registry.lifecycle.retire("v2-2", "superseded")
    assert registry.reads.live_at_landing_path("team/report.txt").id == "v1-1"  # type: ignore[union-attr]


def test_opening_an_existing_registry_keeps_its_rows_and_schema_version(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    first = Registry(url)
    _register(first, "keep-1")
    first.close()
    second = Registry(url)
    assert second.reads.get("keep-1") is not None
    with second.db.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0005"
    second.close()
