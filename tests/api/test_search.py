"""GET /search: its input checks, and its lexical fallback while the vector index is down."""

from pathlib import Path

from fastapi.testclient import TestClient
from support.api import assert_error, upload
from support.runs import ingest_landed

from bench.harness.processes import free_port
from rag_api.main import create_app

pytest_plugins = ["support.api"]


def test_search_falls_back_to_lexical_while_the_vector_index_is_down(
    client, instance, settings, corpus: Path
) -> None:
    doc = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")]).json()[
        "documents"
    ][0]
    ingest_landed(instance, str(settings.data_dir))
    port = str(free_port())
    # A URL with a password: neither it nor the store's own error text reaches a client.
    down = settings.model_copy(update={"chroma_url": f"http://rag:pw-s3cret@127.0.0.1:{port}"})

    with TestClient(create_app(down, instance)) as degraded:
        hybrid = degraded.get("/search", params={"q": "Watford as a trainee"})
        assert hybrid.status_code == 200
        body = hybrid.json()
        assert body["mode"] == "lexical" and "Chroma" in body["degraded"]
        assert body["results"][0]["document_id"] == doc["id"]
        lexical = degraded.get("/search", params={"q": "Watford", "mode": "lexical"}).json()
        assert lexical["degraded"] is None and lexical["results"]
        dense = degraded.get("/search", params={"q": "x", "mode": "dense"})
        assert_error(dense, 503, "index_unavailable")
        for told in (dense.text, hybrid.text):
            assert "pw-s3cret" not in told and port not in told and "127.0.0.1" not in told
    assert client.get("/search", params={"q": "Watford"}).json()["mode"] == "hybrid"


def test_search_validates_its_input(client) -> None:
    assert_error(client.get("/search"), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "x", "k": 0}), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "x", "mode": "fuzzy"}), 422, "invalid_request")
    assert_error(client.get("/search", params={"q": "   "}), 422, "invalid_query")
    assert client.get("/search", params={"q": "nothing indexed yet"}).json()["results"] == []
