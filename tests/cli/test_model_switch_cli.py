"""`rag-pipeline collections`: set-model starts a switch's backfill, show and list follow it,
and cancel-switch abandons it."""

import json
from pathlib import Path

from support.runs import copy_corpus, materialize, run_cli

from rag_pipeline.core.storage.data_dir import DocumentStore

NORWICH = "text/uns_norwich-city.txt"


def test_a_model_switch_from_the_command_line(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    store.registry.tenancy.create_collection("acme", embedding_model="hash-384")
    code, out = run_cli(
        ["add", str(copy_corpus(corpus, NORWICH, tmp_path)), "--collection", "acme"]
    )
    assert code == 0, out
    doc = out.strip()
    assert materialize(instance, [doc]).success

    code, out = run_cli(["collections", "set-model", "acme", "hash-256"])
    assert code == 0, out
    [backfill] = instance.get_backfills()
    assert backfill.backfill_id in out and "switching to hash-256: 0/1 done" in out
    assert run_cli(["collections", "set-model", "acme", "no-such-model"])[0] == 1
    assert run_cli(["collections", "set-model", "acme", "hash-256"])[0] == 1  # under way

    switch_tags = {k: v for k, v in backfill.tags.items() if k.startswith("rag/")}
    assert materialize(instance, [doc], ["chunk_embeddings", "vector_index"], switch_tags).success
    code, out = run_cli(["collections", "show", "acme"])
    shown = json.loads(out)
    assert (shown["embedding_model"], shown["generation"], shown["model_switch"]) == (
        "hash-256",
        2,
        None,
    )

    assert run_cli(["collections", "set-model", "acme", "hash-384"])[0] == 0
    code, out = run_cli(["collections", "cancel-switch", "acme"])
    assert code == 0 and "stays on hash-256" in out, out
    code, out = run_cli(["collections", "list", "--json"])
    listed = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert listed["acme"]["model_switch"] is None and listed["acme"]["generation"] == 2
