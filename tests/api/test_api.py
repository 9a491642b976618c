"""The REST front door against the real app, a real instance, a Chroma server and corpus files.

Ingestion is driven in process (sensor tick + range run) so these stay fast; the end-to-end
test with the real daemon and model is test_api_e2e.py.
"""

import json
import threading
from pathlib import Path

import pytest
from conftest import free_port, ingest_landed
from fastapi.testclient import TestClient

from rag_api.main import create_app
from rag_pipeline.settings import Settings


@pytest.fixture()
def settings(rag_env) -> Settings:
    return Settings(
        data_dir=Path(rag_env["RAG_DATA_DIR"]),
        chroma_url=rag_env["RAG_CHROMA_URL"],
        chroma_collection=rag_env["RAG_CHROMA_COLLECTION"],
        embedding_model="hash-384",
        max_upload_mb=0.25,
        events_poll_seconds=0.05,
    )


@pytest.fixture()
def client(settings: Settings, instance):
    with TestClient(create_app(settings, instance)) as test_client:
        yield test_client


def _file(corpus: Path, rel: str, name: str | None = None) -> tuple[str, tuple[str, bytes]]:
    return ("file", (name or Path(rel).name, (corpus / rel).read_bytes()))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def test_upload_is_queued_then_indexed_and_searchable(
    client, instance, settings, corpus: Path
) -> None:
    response = client.post("/documents", files=[_file(corpus, "text/uns_norwich-city.txt")])

    assert response.status_code == 202
    [doc] = response.json()["documents"]
    assert doc["status"] == "queued" and doc["duplicate"] is False
    assert response.headers["location"] == doc["status_url"] == f"/documents/{doc['id']}"
    assert client.get(doc["status_url"]).json()["status"] == "queued"

    ingest_landed(instance, str(settings.data_dir))

    status = client.get(doc["status_url"]).json()
    assert status["status"] == "indexed"
    assert status["chunks"] > 0 and status["run_ids"]
    assert status["stages"]["vector_index"]["state"] == "materialized"
    hits = client.get("/search", params={"q": "Norwich City Football Club", "k": 3}).json()
    assert hits["results"][0]["document_id"] == doc["id"]
    assert set(hits["results"][0]) >= {
        "document_id",
        "filename",
        "page",
        "score",
        "text",
        "char_start",
        "char_end",
    }


def test_several_files_and_per_document_chunk_options(
    client, instance, settings, corpus: Path
) -> None:
    response = client.post(
        "/documents",
        files=[
            _file(corpus, "text/uns_norwich-city.txt"),
            _file(corpus, "markdown/plumber_README.md"),
        ],
        data={"chunk_size": "64", "chunk_overlap": "8"},
    )
    assert response.status_code == 202
    ids = [d["id"] for d in response.json()["documents"]]

    ingest_landed(instance, str(settings.data_dir))

    for doc_id in ids:
        chunks = client.get(f"/documents/{doc_id}").json()["stages"]["document_chunks"]
        assert chunks["metadata"]["chunk_size"] == 64
        assert chunks["metadata"]["chunk_overlap"] == 8
        assert chunks["metadata"]["tokens_max"] <= 64


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"chunk_size": "0"}, "chunk_size"),
        ({"chunk_size": "999"}, "chunk_size"),
        ({"chunk_size": "50", "chunk_overlap": "50"}, "chunk_overlap"),
        ({"chunk_size": "abc"}, "chunk_size"),
    ],
)
def test_bad_chunk_options_are_refused(client, corpus: Path, data: dict, field: str) -> None:
    response = client.post(
        "/documents", files=[_file(corpus, "markdown/haystack_sample.md")], data=data
    )
    # Range errors come from our own check, type errors from request validation.
    body = assert_error(
        response, 422, "invalid_request" if data.get("chunk_size") == "abc" else "invalid_options"
    )
    assert field in json.dumps(body)


def test_bad_input_gets_the_right_status(client, settings, corpus: Path) -> None:
    assert_error(
        client.post("/documents", files=[_file(corpus, "text/uns_empty.txt")]), 422, "empty_file"
    )
    assert_error(
        client.post("/documents", files=[_file(corpus, "text/uns_fake-text-all-whitespace.txt")]),
        422,
        "empty_file",
    )
    png = ("file", ("scan.pdf", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8))
    assert_error(client.post("/documents", files=[png]), 415, "unsupported_type")
    big = ("file", ("big.txt", b"word " * 60_000))  # 300 KB > 0.25 MB
    assert_error(client.post("/documents", files=[big]), 413, "payload_too_large")
    assert_error(client.post("/documents"), 422, "invalid_request")
    assert_error(
        client.post(
            "/documents",
            content=b"--x\r\nnot multipart",
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        400,
        "bad_request",
    )
    # Nothing from a refused request reaches the store or the registry.
    _assert_nothing_kept(settings)


def _assert_nothing_kept(settings) -> None:  # type: ignore[no-untyped-def]
    from rag_pipeline.core.store import DocumentStore

    store = DocumentStore(settings.data_dir)
    assert not store.incoming_dir.exists() or not list(store.incoming_dir.rglob("*.*"))
    assert store.registry.page()[1] == 0


def test_one_bad_file_refuses_the_whole_request(client, settings, corpus: Path) -> None:
    response = client.post(
        "/documents",
        files=[_file(corpus, "markdown/haystack_sample.md"), _file(corpus, "text/uns_empty.txt")],
    )
    assert_error(response, 422, "empty_file")
    _assert_nothing_kept(settings)


def test_identical_content_is_a_duplicate(client, instance, settings, corpus: Path) -> None:
    first = client.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")]).json()[
        "documents"
    ][0]
    queued_again = client.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")])
    assert (
        queued_again.status_code == 200 and queued_again.json()["documents"][0]["id"] == first["id"]
    )
    ingest_landed(instance, str(settings.data_dir))

    again = client.post(
        "/documents", files=[_file(corpus, "markdown/haystack_sample.md", "renamed.md")]
    )

    assert again.status_code == 200
    [doc] = again.json()["documents"]
    assert doc == {**doc, "id": first["id"], "duplicate": True}


def test_an_upload_cut_off_by_a_crash_is_accepted_again(
    client, instance, settings, corpus: Path
) -> None:
    """Killed between writing the upload's bytes and registering them, the API never answered;
    the client's retry must deliver the file, not be told it is a duplicate of nothing."""
    from rag_pipeline.core.store import DocumentStore, document_id, sha256_bytes

    store = DocumentStore(settings.data_dir)
    data = (corpus / "markdown/haystack_sample.md").read_bytes()
    cut_id = document_id("haystack_sample.md", sha256_bytes(data))
    copy = store.keep_incoming(cut_id, "haystack_sample.md", data)  # the row never committed
    assert client.get(f"/documents/{cut_id}").status_code == 404

    retry = client.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")])
    assert retry.status_code == 202, retry.text
    [doc] = retry.json()["documents"]
    assert doc["id"] == cut_id and not doc["duplicate"]
    assert copy.read_bytes() == data
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(f"/documents/{doc['id']}").json()["status"] == "indexed"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.txt",
        "/tmp/absolute.md",
        "..\\..\\windows.txt",
        "a" * 300 + ".md",
        "\u202egnp.md",
        "résumé 履歴書.md",
        "nul\x00byte.md",
        "..",
        "",
    ],
)
def test_hostile_file_names_stay_inside_the_upload_folder(
    client, settings, tmp_path: Path, name: str
) -> None:
    client.get("/documents")  # the registry's own files exist before the upload
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    response = client.post(
        "/documents", files=[("file", (name, b"# Title\n\nSome real text here.\n"))]
    )
    assert response.status_code in (202, 422), response.text
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    written -= {p for p in written if p.parent == settings.data_dir and "registry" in p.name}
    incoming = (settings.data_dir / "incoming").resolve()
    assert len(written) == (1 if response.status_code == 202 else 0), written
    for path in written:
        # incoming/<document id>/<the name made safe>
        assert path.resolve().parent.parent == incoming, path
        assert len(path.name.encode()) <= 255
    if response.status_code == 202:
        doc = response.json()["documents"][0]
        assert "/" not in doc["filename"] and "\x00" not in doc["filename"]
        assert client.get(doc["status_url"]).json()["status"] == "queued"


def test_unknown_documents_are_404(client) -> None:
    assert_error(client.get("/documents/nope-123"), 404, "not_found")
    assert_error(client.get("/documents/nope-123/events"), 404, "not_found")
    assert_error(client.delete("/documents/nope-123"), 404, "not_found")


def test_listing_filters_and_pages(client, instance, settings, corpus: Path) -> None:
    client.post(
        "/documents",
        files=[
            _file(corpus, "markdown/haystack_sample.md"),
            _file(corpus, "markdown/uns_codeblock.md"),
        ],
    )
    client.post("/documents", files=[_file(corpus, "pdf_problem/uns_password.pdf")])
    ingest_landed(instance, str(settings.data_dir))

    everything = client.get("/documents").json()
    assert everything["total"] == 3
    failed = client.get("/documents", params={"status": "failed"}).json()
    assert [d["filename"] for d in failed["items"]] == ["uns_password.pdf"]
    assert failed["items"][0]["error"]["code"] == "password_required"
    page = client.get("/documents", params={"limit": 1, "offset": 1}).json()
    assert len(page["items"]) == 1 and page["items"][0]["id"] == everything["items"][1]["id"]
    assert_error(client.get("/documents", params={"status": "bogus"}), 422, "invalid_request")


def test_delete_then_upload_again_ingests_afresh(client, instance, settings, corpus: Path) -> None:
    doc = client.post("/documents", files=[_file(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(doc["status_url"]).json()["status"] == "indexed"

    assert client.delete(doc["status_url"]).status_code == 204

    gone = client.get(doc["status_url"]).json()
    assert gone["status"] == "deleted"
    for mode in ("hybrid", "dense", "lexical"):
        hits = client.get("/search", params={"q": "Norwich City", "mode": mode}).json()
        assert all(h["document_id"] != doc["id"] for h in hits["results"]), mode
    assert_error(client.delete(doc["status_url"]), 404, "not_found")

    again = client.post("/documents", files=[_file(corpus, "text/uns_norwich-city.txt")])
    assert again.status_code == 202 and again.json()["documents"][0]["id"] == doc["id"]
    assert client.get(doc["status_url"]).json()["status"] == "queued", "old history is not reused"
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(doc["status_url"]).json()["status"] == "indexed"


def test_put_replaces_a_document_once_the_new_version_is_indexed(
    client, instance, settings, corpus: Path
) -> None:
    old = client.post(
        "/documents", files=[_file(corpus, "markdown/haystack_sample.md", "guide.md")]
    ).json()["documents"][0]
    ingest_landed(instance, str(settings.data_dir))

    response = client.put(
        old["status_url"], files=[_file(corpus, "markdown/plumber_README.md", "guide.md")]
    )

    assert response.status_code == 202
    new = response.json()["documents"][0]
    assert new["id"] != old["id"]
    assert client.get(old["status_url"]).json()["status"] == "indexed", "still searchable meanwhile"
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(new["status_url"]).json()["status"] == "indexed"
    replaced = client.get(old["status_url"]).json()
    assert replaced["status"] == "deleted" and replaced["superseded_by"] == new["id"]
    # Lexical search follows the replacement: the old text is gone, the new one is found.
    old_phrase = {"q": "Haystack", "mode": "lexical", "k": 20}
    assert all(
        h["document_id"] != old["id"]
        for h in client.get("/search", params=old_phrase).json()["results"]
    )
    new_hits = client.get("/search", params={"q": "pdfplumber", "mode": "lexical"}).json()
    assert new_hits["results"][0]["document_id"] == new["id"]


def test_events_stream_stage_transitions_until_indexed(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")]).json()[
        "documents"
    ][0]
    worker = threading.Timer(0.5, ingest_landed, args=(instance, str(settings.data_dir)))
    worker.start()

    statuses = []
    with client.stream("GET", f"{doc['status_url']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                statuses.append(json.loads(line[6:])["status"])
    worker.join()

    assert statuses[0] == "queued"
    assert statuses[-1] == "indexed"


def test_search_falls_back_to_lexical_while_the_vector_index_is_down(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[_file(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    ingest_landed(instance, str(settings.data_dir))
    down = settings.model_copy(update={"chroma_url": f"http://127.0.0.1:{free_port()}"})

    with TestClient(create_app(down, instance)) as degraded:
        hybrid = degraded.get("/search", params={"q": "Watford as a trainee"})
        assert hybrid.status_code == 200
        body = hybrid.json()
        assert body["mode"] == "lexical" and "Chroma" in body["degraded"]
        assert body["results"][0]["document_id"] == doc["id"]
        lexical = degraded.get("/search", params={"q": "Watford", "mode": "lexical"}).json()
        assert lexical["degraded"] is None and lexical["results"]
        assert_error(
            degraded.get("/search", params={"q": "x", "mode": "dense"}), 503, "index_unavailable"
        )
    assert client.get("/search", params={"q": "Watford"}).json()["mode"] == "hybrid"


def test_search_validates_its_input(client) -> None:
    assert_error(client.get("/search"), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "x", "k": 0}), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "x", "mode": "fuzzy"}), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "   "}), 422, "invalid_query")
    assert client.get("/search", params={"q": "nothing indexed yet"}).json()["results"] == []


def test_health_and_schedules(client, settings, instance) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {
        "status": "ok",
        "checks": {"instance": "ok", "index": "ok"},
    }
    listed = {i["name"]: i for i in client.get("/schedules").json()}
    assert listed["landing_zone_sensor"]["kind"] == "sensor"
    assert listed["landing_zone_sensor"]["status"] == "running"

    broken = settings.model_copy(update={"chroma_url": "http://127.0.0.1:9"})
    with TestClient(create_app(broken, instance)) as bad:
        response = bad.get("/health")
    assert response.status_code == 503 and response.json()["checks"]["index"].startswith("error")


def test_a_key_protects_everything_but_health(settings, instance, corpus: Path) -> None:
    locked = settings.model_copy(update={"api_key": "s3cret-key"})
    with TestClient(create_app(locked, instance)) as c:
        assert c.get("/health").status_code == 200
        for method, path in [
            ("get", "/documents"),
            ("get", "/search?q=x"),
            ("get", "/schedules"),
            ("get", "/documents/x"),
            ("delete", "/documents/x"),
        ]:
            assert_error(getattr(c, method)(path), 401, "unauthorized")
            assert_error(
                getattr(c, method)(path, headers={"Authorization": "Bearer wrong"}),
                401,
                "unauthorized",
            )
        assert_error(
            c.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")]),
            401,
            "unauthorized",
        )
        ok = c.get("/documents", headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200


def test_openapi_documents_every_route(client) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/documents",
        "/documents/{doc_id}",
        "/documents/{doc_id}/events",
        "/search",
        "/schedules",
        "/health",
    } <= set(schema["paths"])
    statuses = schema["components"]["schemas"]["DocumentStatus"]["enum"]
    assert statuses == ["queued", "processing", "indexed", "failed", "rejected", "deleted"]


@pytest.mark.parametrize("doc_id", ["a%00b", "..%2Fregistry.db", "..%2F..%2Fetc%2Fpasswd", "x'--"])
def test_ids_no_document_could_have_are_404_without_touching_the_store(
    client, settings, corpus: Path, doc_id: str
) -> None:
    client.post("/documents", files=[_file(corpus, "markdown/haystack_sample.md")])
    for method in ("GET", "DELETE"):
        assert_error(client.request(method, f"/documents/{doc_id}"), 404, "not_found")
    assert_error(client.get(f"/documents/{doc_id}/events"), 404, "not_found")
    assert client.get("/documents").json()["total"] == 1, "the real document is untouched"
