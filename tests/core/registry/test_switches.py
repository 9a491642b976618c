"""A collection's model switch in the registry: one at a time, its progress, the swap in one
transaction only once every carried document is written and none is in flight, restart (after
a restore) and cancel."""

import pytest

from rag_pipeline.core.registry import Registry
from rag_pipeline.core.registry.switches import SwitchConflict


def _indexed(reg: Registry, doc_id: str) -> None:
    reg.lifecycle.register(
        doc_id,
        source_path=f"/in/{doc_id}",
        filename=f"{doc_id}.txt",
        sha256=doc_id.ljust(64, "0"),
        size=3,
        origin="upload",
        collection="kb",
    )
    reg.projection.start([doc_id], "run-1", ["chunk_embeddings", "vector_index"])
    reg.projection.stages_done("chunk_embeddings", "run-1", {doc_id: {"model": "hash-384"}})
    reg.projection.stages_done("vector_index", "run-1", {doc_id: {"vectors": 1}})
    reg.projection.finish([doc_id], "run-1")


def test_a_switch_swaps_once_every_document_is_written_and_none_is_in_flight(
    registry: Registry,
) -> None:
    registry.tenancy.create_collection("kb", embedding_model="hash-384")
    for doc_id in ("a", "b"):
        _indexed(registry, doc_id)
    with pytest.raises(SwitchConflict, match="already uses"):
        registry.switches.start("kb", "hash-384", "hash-384")
    started = registry.switches.start("kb", "hash-256", "hash-384")
    assert (started.pending_model, started.pending_generation, started.generation) == (
        "hash-256",
        2,
        1,
    )
    assert started.pending_suffix == f"{started.index_suffix}__g2"
    with pytest.raises(SwitchConflict) as pending:
        registry.switches.start("kb", "hash-256", "hash-384")
    assert pending.value.code == "model_switch_pending"

    new = {"model": "hash-256", "dimension": 256}
    registry.switches.record("kb", 2, done={"a": new}, failed={"b": ("refused", "no")})
    registry.switches.record("kb", 3, done={"b": new})  # not the pending generation: ignored
    progress = registry.switches.progress(started)
    assert progress is not None
    assert (progress.done, progress.total, [f.document_id for f in progress.failed]) == (
        1,
        2,
        ["b"],
    )
    assert registry.switches.unfinished("kb") == ["b"]
    assert registry.switches.complete("kb", 2) is None

    # b is written, but c is still on its way in: the swap waits for its run.
    registry.switches.record("kb", 2, done={"b": new})
    registry.lifecycle.register(
        "c",
        source_path="/in/c",
        filename="c.txt",
        sha256="c" * 64,
        size=3,
        origin="upload",
        collection="kb",
    )
    registry.switches.record("kb", 2, done={"c": new})
    assert registry.switches.complete("kb", 2) is None
    old = registry.switches.complete("kb", 2, settled=["c"])
    assert old is not None and old.generation == 1
    now = registry.tenancy.collection("kb")
    assert now is not None
    assert (now.embedding_model, now.generation, now.pending_model) == ("hash-256", 2, None)
    a = registry.reads.get("a")
    assert a is not None and a.stages["chunk_embeddings"].metadata == new
    assert registry.switches.progress(now) is None


def test_a_cancelled_switch_forgets_its_generation(registry: Registry) -> None:
    registry.tenancy.create_collection("kb", embedding_model="hash-384")
    _indexed(registry, "a")
    with pytest.raises(SwitchConflict, match="no model switch"):
        registry.switches.cancel("kb")
    registry.switches.start("kb", "hash-256", "hash-384")
    registry.switches.record("kb", 2, done={"a": {}})
    registry.switches.restart("kb")  # as a restore does: its generation was not restored
    assert registry.switches.unfinished("kb") == ["a"]
    registry.switches.record("kb", 2, done={"a": {}})
    assert registry.switches.unfinished("kb") == []
    before = registry.switches.cancel("kb")
    assert before.pending_generation == 2
    kept = registry.tenancy.collection("kb")
    assert kept is not None and (kept.embedding_model, kept.pending_model) == ("hash-384", None)
    assert registry.switches.complete("kb", 2) is None
    again = registry.switches.start("kb", "hash-256", "hash-384")
    assert again.pending_generation == 3  # a cancelled generation's number is not used again
    progress = registry.switches.progress(again)
    assert progress is not None and progress.done == 0
