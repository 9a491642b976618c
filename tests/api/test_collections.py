"""Collections through the API: their life, their chunk defaults, their landing folders, and
deleting one with everything in it."""

import json
import time
from pathlib import Path

import chromadb
from chromadb.config import Settings as ChromaSettings
from dagster import AssetKey
from support.api import assert_error, take_into_partitions, upload
from support.runs import ingest_landed

from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import ARTIFACT_KINDS, DocumentStore
from rag_pipeline.orchestration.partitions import DOCUMENTS
from rag_pipeline.orchestration.sensors import COLLECTION_TAG

pytest_plugins = ["support.api"]

NORWICH = "text/uns_norwich-city.txt"
HAYSTACK = "markdown/haystack_sample.md"
PLUMBER = "markdown/plumber_README.md"


def _chroma_names(url: str) -> set[str]:
    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=ChromaSettings(anonymized_telemetry=False)
    )
    return {c.name for c in client.list_collections()}


def test_a_collection_is_created_listed_read_changed_and_refused_twice(client) -> None:
    made = client.post(
        "/collections",
        json={"name": "acme-docs", "description": "Acme's manuals", "chunk_size": 64},
    )
    assert made.status_code == 201, made.text
    assert made.headers["location"] == "/collections/acme-docs"
    assert made.json()["chunk_size"] == 64 and made.json()["documents"] == 0

    listed = client.get("/collections").json()
    assert [c["name"] for c in listed] == ["acme-docs", "default"]
    assert client.get("/collections/acme-docs").json()["description"] == "Acme's manuals"

    changed = client.patch("/collections/acme-docs", json={"chunk_overlap": 8})
    assert (changed.json()["chunk_size"], changed.json()["chunk_overlap"]) == (64, 8)
    assert_error(
        client.patch("/collections/acme-docs", json={"chunk_overlap": 64}), 422, "invalid_options"
    )

    assert_error(client.post("/collections", json={"name": "acme-docs"}), 409, "collection_exists")
    for bad in ("Acme", "acme--docs", "-acme", "a" * 49, "processed", "", "ac me"):
        assert_error(
            client.post("/collections", json={"name": bad}), 422, "invalid_collection_name"
        )
    assert_error(
        client.post("/collections", json={"name": "big", "chunk_size": 9999}),
        422,
        "invalid_options",
    )
    assert_error(client.get("/collections/nope"), 404, "not_found")
    assert_error(client.delete("/collections/default"), 409, "collection_protected")


def test_uploads_take_their_collections_chunk_defaults_unless_they_give_their_own(
    client, instance, settings, corpus: Path
) -> None:
    client.post("/collections", json={"name": "small", "chunk_size": 40, "chunk_overlap": 4})
    into = client.post("/collections/small/documents", files=[upload(corpus, NORWICH)])
    assert into.status_code == 202, into.text
    own = client.post(
        "/collections/small/documents",
        files=[upload(corpus, PLUMBER)],
        data={"chunk_size": "120", "chunk_overlap": "0"},
    )
    plain = client.post("/documents", files=[upload(corpus, HAYSTACK)])
    [small] = into.json()["documents"]
    [custom] = own.json()["documents"]
    [default] = plain.json()["documents"]
    assert small["id"].startswith("small--") and not default["id"].startswith("small--")

    ingest_landed(instance, str(settings.data_dir))

    def chunk_settings(doc: dict) -> tuple[int, int]:
        meta = client.get(doc["status_url"]).json()["stages"]["document_chunks"]["metadata"]
        return meta["chunk_size"], meta["chunk_overlap"]

    assert chunk_settings(small) == (40, 4)
    assert chunk_settings(custom) == (120, 0)
    assert chunk_settings(default) == (settings.chunk_size, settings.chunk_overlap)
    assert client.get(small["status_url"]).json()["collection"] == "small"
    assert client.get(default["status_url"]).json()["collection"] == "default"
    assert client.get("/collections/small").json()["documents"] == 2
    assert client.get("/collections/small").json()["by_status"] == {"indexed": 2}

    listed = client.get("/documents", params={"collection": "small"}).json()
    assert {d["id"] for d in listed["items"]} == {small["id"], custom["id"]}
    assert listed["total"] == 2
    assert client.get("/documents", params={"collection": "default"}).json()["total"] == 1
    both = client.get("/documents", params=[("collection", "small"), ("collection", "default")])
    assert both.json()["total"] == 3
    assert_error(client.get("/documents", params={"collection": "nope"}), 404, "not_found")
    assert_error(
        client.post("/collections/nope/documents", files=[upload(corpus, NORWICH)]),
        404,
        "not_found",
    )

    # Each collection's vectors are in an index of its own.
    hits = client.get("/search", params={"q": "Norwich City", "collection": "small"}).json()
    assert {h["document_id"] for h in hits["results"]} <= {small["id"], custom["id"]}
    assert hits["results"][0]["collection"] == "small"


def test_the_same_file_in_two_collections_is_two_documents(client, corpus: Path) -> None:
    client.post("/collections", json={"name": "one"})
    first = client.post("/collections/one/documents", files=[upload(corpus, NORWICH)])
    second = client.post("/documents", files=[upload(corpus, NORWICH)])
    again = client.post("/collections/one/documents", files=[upload(corpus, NORWICH, "x.txt")])
    [a], [b], [c] = (r.json()["documents"] for r in (first, second, again))
    assert a["id"] != b["id"] and not b["duplicate"]
    assert c["duplicate"] and c["id"] == a["id"], "the same bytes in one collection dedupe"


def test_the_landing_zone_has_a_folder_per_collection(
    client, instance, settings, corpus: Path
) -> None:
    client.post("/collections", json={"name": "team"})
    landing = settings.data_dir / "landing"
    (landing / "team" / "2024").mkdir(parents=True)
    (landing / "elsewhere").mkdir()
    (landing / "team" / "2024" / "norwich.txt").write_bytes((corpus / NORWICH).read_bytes())
    (landing / "team" / "2024" / "norwich.txt.meta.json").write_text(
        json.dumps({"year": 2024, "tags": ["football"]})
    )
    (landing / "top.md").write_bytes((corpus / HAYSTACK).read_bytes())
    (landing / "elsewhere" / "lost.md").write_bytes((corpus / PLUMBER).read_bytes())
    (landing / "team" / "bad.md").write_bytes((corpus / PLUMBER).read_bytes())
    (landing / "team" / "bad.md.meta.json").write_text('{"year": null}')

    keys = ingest_landed(instance, str(settings.data_dir))

    docs = {d["filename"]: d for d in client.get("/documents").json()["items"]}
    assert docs["norwich.txt"]["collection"] == "team"
    assert docs["norwich.txt"]["metadata"] == {"year": 2024, "tags": ["football"]}
    assert docs["norwich.txt"]["status"] == "indexed"
    assert docs["top.md"]["collection"] == "default"
    assert len(keys) == 2, "the sidecars are not documents"
    rejected = {
        d["filename"]: d
        for d in client.get("/documents", params={"status": "rejected"}).json()["items"]
    }
    assert rejected["lost.md"]["error"]["code"] == "unknown_collection"
    assert "landing/elsewhere/" in rejected["lost.md"]["error"]["message"]
    assert rejected["bad.md"]["error"]["code"] == "invalid_metadata"
    assert rejected["bad.md"]["collection"] == "team"
    # The sidecar went with its file.
    processed = landing / "processed" / "team" / "2024"
    assert (processed / "norwich.txt").exists() and (processed / "norwich.txt.meta.json").exists()
    assert (landing / "rejected" / "team" / "bad.md.meta.json").exists()

    # Each run holds one collection's documents and says which.
    runs = instance.get_runs()
    assert {run.tags.get(COLLECTION_TAG) for run in runs} == {"team", "default"}
    # And so does each materialization.
    for stage in ("raw_document", "vector_index"):
        records = instance.fetch_materializations(AssetKey(stage), limit=10).records
        collections = {
            r.asset_materialization.partition: r.asset_materialization.metadata["collection"].value
            for r in records
        }
        assert collections[docs["norwich.txt"]["id"]] == "team", stage
        assert collections[docs["top.md"]["id"]] == "default", stage


def test_deleting_a_collection_leaves_nothing_behind(
    client, instance, settings, rag_env, corpus: Path
) -> None:
    client.post("/collections", json={"name": "gone"})
    ids = [
        d["id"]
        for d in client.post(
            "/collections/gone/documents",
            files=[upload(corpus, NORWICH), upload(corpus, PLUMBER)],
            data={"metadata": '{"team": "red"}'},
        ).json()["documents"]
    ]
    kept = client.post("/documents", files=[upload(corpus, HAYSTACK)]).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))
    # A file waiting in its landing folder, and one it rejected.
    landing = settings.data_dir / "landing" / "gone"
    landing.mkdir(parents=True)
    (landing / "empty.txt").write_bytes(b"")
    take_into_partitions(instance, settings.data_dir)
    (landing / "waiting.md").write_bytes((corpus / HAYSTACK).read_bytes())
    store = DocumentStore(settings.data_dir)
    assert len(store.registry.tenancy.collection_document_ids("gone")) == 3
    index_names = _chroma_names(rag_env["RAG_CHROMA_URL"])
    own_index = {
        n for n in index_names if n.startswith(f"{rag_env['RAG_CHROMA_COLLECTION']}--gone-")
    }
    assert len(own_index) == 1

    assert client.delete("/collections/gone").status_code == 204

    assert store.registry.tenancy.collection_document_ids("gone") == []
    for doc_id in ids:
        assert_error(client.get(f"/documents/{doc_id}"), 404, "not_found")
        assert not instance.has_dynamic_partition(DOCUMENTS, doc_id)
        assert not store.raw_path(doc_id).exists()
        assert not (store.incoming_dir / doc_id).exists()
        for kind in ARTIFACT_KINDS:
            assert not store.artifact_path(kind, doc_id).exists(), kind
    assert not own_index & _chroma_names(rag_env["RAG_CHROMA_URL"])
    assert not landing.exists()
    assert not (settings.data_dir / "landing" / "rejected" / "gone").exists()
    assert not (settings.data_dir / "landing" / "processed" / "gone").exists()
    _, rows = Catalog(store).query("SELECT DISTINCT document_id FROM chunks")
    assert rows == [(kept["id"],)]
    for mode in ("lexical", "hybrid", "dense"):
        hits = client.get("/search", params={"q": "Norwich City", "mode": mode}).json()
        assert {h["document_id"] for h in hits["results"]} <= {kept["id"]}, mode
    assert_error(client.get("/collections/gone"), 404, "not_found")
    assert client.get(kept["status_url"]).json()["status"] == "indexed"

    # Made again, it starts empty, and the same file is ingested afresh under the same id.
    client.post("/collections", json={"name": "gone"})
    assert client.get("/collections/gone").json()["documents"] == 0
    again = client.post("/collections/gone/documents", files=[upload(corpus, NORWICH)])
    assert again.json()["documents"][0]["id"] == ids[0]
    time.sleep(0.01)
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(f"/documents/{ids[0]}").json()["status"] == "indexed"
