"""Switching a collection's embedding model: a new index generation written by a backfill while
search serves the old one, then an atomic swap; uploads during the switch, failures, retry and
cancel. The switch's backfill runs in process here, range by range, as the daemon would run it.
"""

from pathlib import Path

from dagster import AssetKey
from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.pipeline import vector_index
from support.runs import ingest_landed, materialize

from rag_pipeline.core.registry.model import Collection
from rag_pipeline.core.stages.embedders import EmbeddingError
from rag_pipeline.core.stages.embedders.hashing import HashEmbedder
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"
HAYSTACK = "markdown/haystack_sample.md"
PLUMBER = "markdown/plumber_README.md"
QUERY = {"q": "Norwich City football club", "mode": "dense", "collection": "kb", "k": 3}


def _collection(settings: Settings, name: str = "kb") -> Collection:
    from rag_pipeline.core.storage.data_dir import DocumentStore

    found = DocumentStore(settings.data_dir).registry.tenancy.collection(name)
    assert found is not None
    return found


def _switch_backfill(instance) -> tuple[list[str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """The latest switch backfill launched: its documents, and the tags its runs carry."""
    backfill = max(
        (b for b in instance.get_backfills() if "rag/model-switch" in b.tags),
        key=lambda b: b.backfill_timestamp,
    )
    targets = list(backfill.asset_backfill_data.target_subset.iterate_asset_partitions())
    assert {t.asset_key for t in targets} == {
        AssetKey("chunk_embeddings"),
        AssetKey("vector_index"),
    }
    order = list(instance.get_dynamic_partitions("documents"))
    keys = sorted({t.partition_key for t in targets}, key=order.index)
    tags = {k: v for k, v in backfill.tags.items() if k.startswith("rag/")}
    return keys, tags


def _run(instance, keys: list[str], tags: dict[str, str]) -> bool:  # type: ignore[no-untyped-def]
    return bool(materialize(instance, keys, ["chunk_embeddings", "vector_index"], tags).success)


def _found(client: TestClient, doc_id: str) -> bool:
    hits = client.get("/search", params=QUERY)
    assert hits.status_code == 200, hits.text
    return doc_id in {h["document_id"] for h in hits.json()["results"]}


def _ingested(client: TestClient, instance, settings: Settings, corpus: Path) -> list[str]:  # type: ignore[no-untyped-def]
    assert client.post("/collections", json={"name": "kb"}).status_code == 201
    files = [upload(corpus, NORWICH), upload(corpus, HAYSTACK)]
    docs = client.post("/collections/kb/documents", files=files).json()["documents"]
    ingest_landed(instance, str(settings.data_dir))
    return [doc["id"] for doc in docs]


def _switching(
    client: TestClient, instance, settings: Settings, corpus: Path
) -> tuple[str, str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Two documents of `kb` indexed, a switch to hash-256 started and the first of them
    written to its generation; returns their ids and the tags of the switch's runs."""
    norwich, haystack = _ingested(client, instance, settings, corpus)
    assert client.patch("/collections/kb", json={"embedding_model": "hash-256"}).status_code == 202
    keys, tags = _switch_backfill(instance)
    assert keys == [norwich, haystack] and _run(instance, [norwich], tags)
    return norwich, haystack, tags


def test_a_switch_completes_while_search_answers_and_takes_uploads_made_meanwhile(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path, monkeypatch
) -> None:
    norwich, haystack = _ingested(client, instance, settings, corpus)
    assert _found(client, norwich)
    old = _collection(settings)

    started = client.patch("/collections/kb", json={"embedding_model": "hash-256"})
    assert started.status_code == 202, started.text
    body = started.json()
    assert (body["embedding_model"], body["generation"]) == ("hash-384", 1)
    assert body["model_switch"] == {
        "embedding_model": "hash-256",
        "generation": 2,
        "documents_done": 0,
        "documents_total": 2,
        "failed": [],
    }
    for model in ("hash-256", "hash-384"):  # the switch's model, or the one it leaves
        assert_error(
            client.patch("/collections/kb", json={"embedding_model": model}),
            409,
            "model_switch_pending",
        )
    keys, tags = _switch_backfill(instance)
    assert keys == [norwich, haystack] and tags["rag/model-switch"] == "kb:2"

    # Half the backfill: the old generation still serves, and the documents stay indexed.
    assert _run(instance, [norwich], tags)
    during = client.get("/collections/kb").json()
    assert during["model_switch"]["documents_done"] == 1 and during["generation"] == 1
    assert _found(client, norwich)
    assert client.get(f"/documents/{norwich}").json()["status"] == "indexed"

    # A document uploaded now is written to both generations by its own run.
    [plumber] = client.post("/collections/kb/documents", files=[upload(corpus, PLUMBER)]).json()[
        "documents"
    ]
    ingest_landed(instance, str(settings.data_dir))
    pending = _collection(settings).pending_suffix
    assert pending is not None
    root = vector_index(rag_env)
    assert root.of(pending).count(plumber["id"]) == root.of(old.index_suffix).count(plumber["id"])
    assert root.of(pending).count(plumber["id"]) > 0
    assert client.get("/collections/kb").json()["model_switch"]["documents_total"] == 3

    # The rest of the backfill completes the switch: one swap, the old generation removed.
    assert _run(instance, [haystack], tags)
    after = client.get("/collections/kb").json()
    assert (after["embedding_model"], after["generation"], after["model_switch"]) == (
        "hash-256",
        2,
        None,
    )
    assert _found(client, norwich)
    assert old.index_suffix not in root.suffixes()

    # A search that read the collection just before the swap asks the removed generation, and
    # answers all the same, from the one that serves now.
    from rag_pipeline.core.registry.tenancy import Tenancy

    reads = Tenancy.collections
    calls = iter([[old]])
    monkeypatch.setattr(
        Tenancy, "collections", lambda self, names=None: next(calls, None) or reads(self, names)
    )
    assert _found(client, norwich)
    monkeypatch.setattr(Tenancy, "collections", reads)
    for doc_id in (norwich, haystack, plumber["id"]):
        assert root.of(_collection(settings).index_suffix).count(doc_id) > 0
        stage = client.get(f"/documents/{doc_id}").json()["stages"]["chunk_embeddings"]
        assert (stage["metadata"]["model"], stage["metadata"]["dimension"]) == ("hash-256", 256)

    # Switching to the model it has is a no-op.
    same = client.patch("/collections/kb", json={"embedding_model": "hash-256"})
    assert same.status_code == 200 and same.json()["model_switch"] is None
    assert_error(
        client.patch("/collections/kb", json={"embedding_model": "no-such-model"}),
        422,
        "unknown_embedding_model",
    )


def test_a_cancelled_switch_removes_its_partial_generation(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path
) -> None:
    norwich, haystack, tags = _switching(client, instance, settings, corpus)
    keys = [norwich, haystack]
    pending = _collection(settings).pending_suffix
    root = vector_index(rag_env)
    assert pending in root.suffixes()

    cancelled = client.delete("/collections/kb/model-switch")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["embedding_model"], cancelled.json()["model_switch"]) == (
        "hash-384",
        None,
    )
    assert pending not in root.suffixes()
    assert [b.status.value for b in instance.get_backfills()] == ["CANCELING"]
    # A run of the cancelled backfill already under way writes nothing more.
    assert _run(instance, keys, tags)
    assert pending not in root.suffixes()
    assert _found(client, norwich)
    assert_error(client.delete("/collections/kb/model-switch"), 409, "no_model_switch")
    assert_error(client.post("/collections/kb/model-switch/retry"), 409, "no_model_switch")

    # Switching again writes a generation of a new name, and completes; search follows it.
    assert client.patch("/collections/kb", json={"embedding_model": "hash-256"}).status_code == 202
    keys, tags = _switch_backfill(instance)
    assert tags["rag/model-switch"] == "kb:3" and _run(instance, keys, tags)
    assert client.get("/collections/kb").json()["generation"] == 3
    assert _found(client, norwich)


class _Flaky(HashEmbedder):
    """hash-256 that fails on one document's text, as a model server refusing it would."""

    def embed_documents(self, texts: list[str]) -> object:  # type: ignore[override]
        if any("Haystack" in text for text in texts):
            raise EmbeddingError("embedding_endpoint_refused", "the server answered 400")
        return super().embed_documents(texts)


def test_a_failing_new_model_leaves_the_old_generation_serving_until_a_retry(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path, monkeypatch
) -> None:
    from rag_pipeline.orchestration.resources import EmbedderResource

    norwich, haystack = _ingested(client, instance, settings, corpus)
    assert client.patch("/collections/kb", json={"embedding_model": "hash-256"}).status_code == 202
    keys, tags = _switch_backfill(instance)
    assert keys == [norwich, haystack]
    real_get = EmbedderResource.get
    flaky = _Flaky(256)

    def get(self: EmbedderResource, model_name: str | None = None) -> object:
        return flaky if model_name == "hash-256" else real_get(self, model_name)

    monkeypatch.setattr(EmbedderResource, "get", get)
    assert not _run(instance, [haystack], tags)
    assert _run(instance, [norwich], tags)
    status = client.get("/collections/kb").json()
    assert status["embedding_model"] == "hash-384" and status["generation"] == 1
    assert status["model_switch"]["documents_done"] == 1
    assert status["model_switch"]["failed"] == [
        {
            "document_id": haystack,
            "code": "embedding_endpoint_refused",
            "message": "the server answered 400",
        }
    ]
    assert _found(client, norwich)
    assert client.get(f"/documents/{haystack}").json()["status"] == "indexed"

    # The server takes it now: a retry backfills what is missing and the switch completes.
    monkeypatch.setattr(EmbedderResource, "get", real_get)
    retried = client.post("/collections/kb/model-switch/retry")
    assert retried.status_code == 202, retried.text
    [again] = [b for b in instance.get_backfills() if b.backfill_id != _first_backfill_id(instance)]
    targets = {
        t.partition_key for t in again.asset_backfill_data.target_subset.iterate_asset_partitions()
    }
    assert targets == {haystack}
    assert _run(instance, [haystack], tags)
    done = client.get("/collections/kb").json()
    assert (done["embedding_model"], done["model_switch"]) == ("hash-256", None)
    assert _found(client, norwich)


def _first_backfill_id(instance) -> str:  # type: ignore[no-untyped-def]
    return min(instance.get_backfills(), key=lambda b: b.backfill_timestamp).backfill_id


def test_the_default_collection_switches_off_the_configured_index(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path
) -> None:
    [doc] = client.post("/documents", files=[upload(corpus, NORWICH)]).json()["documents"]
    ingest_landed(instance, str(settings.data_dir))
    root = vector_index(rag_env)
    assert root.count(doc["id"]) > 0
    patched = client.patch("/collections/default", json={"embedding_model": "hash-256"})
    assert patched.status_code == 202, patched.text
    keys, tags = _switch_backfill(instance)
    assert keys == [doc["id"]] and _run(instance, keys, tags)

    after = _collection(settings, "default")
    assert (after.embedding_model, after.index_suffix) == ("hash-256", "__g2")
    # The configured Chroma collection stays (it is never dropped), emptied of the old model.
    assert root.count(doc["id"]) == 0 and root.of("__g2").count(doc["id"]) > 0
    hits = client.get("/search", params={**QUERY, "collection": "default"}).json()["results"]
    assert doc["id"] in {h["document_id"] for h in hits}


def test_deleting_a_switching_collection_removes_both_generations(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path
) -> None:
    _switching(client, instance, settings, corpus)
    switching = _collection(settings)
    root = vector_index(rag_env)
    assert {switching.index_suffix, switching.pending_suffix} <= root.suffixes()

    assert client.delete("/collections/kb").status_code == 204
    assert not {switching.index_suffix, switching.pending_suffix} & root.suffixes()


def test_a_switch_left_complete_by_a_deletion_is_swapped_by_cleanup(
    client: TestClient, instance, settings: Settings, rag_env, corpus: Path
) -> None:
    from rag_pipeline.core.storage.data_dir import DocumentStore
    from rag_pipeline.orchestration.runs import switches

    norwich, haystack, _ = _switching(client, instance, settings, corpus)
    # The one document still missing goes: nothing is left for a step to swap on.
    assert client.delete(f"/documents/{haystack}").status_code == 204
    assert client.get("/collections/kb").json()["model_switch"]["documents_total"] == 1

    store = DocumentStore(settings.data_dir)
    assert switches.complete_ready(instance, store, vector_index(rag_env), "test") == ["kb"]
    after = client.get("/collections/kb").json()
    assert (after["embedding_model"], after["model_switch"]) == ("hash-256", None)
    assert _found(client, norwich)
