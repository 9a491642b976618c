"""GET /embedding-models: what a collection may name, and what each model is."""

import pytest
from fastapi.testclient import TestClient

from rag_api.main import create_app
from rag_pipeline.settings import EmbeddingEndpoint, Settings

pytest_plugins = ["support.api"]


@pytest.fixture()
def with_endpoint(settings: Settings) -> Settings:
    # Nothing listens there: listing reads the declaration and never calls the server.
    declared = EmbeddingEndpoint(
        url="http://127.0.0.1:9/v1", model="BAAI/bge-m3", dimensions=1024, multilingual=True
    )
    return settings.model_copy(update={"embedding_endpoints": {"bge-m3-tei": declared}})


def test_the_bundled_models_and_declared_endpoints_are_listed(
    with_endpoint: Settings, instance: object
) -> None:
    with TestClient(create_app(with_endpoint, instance)) as client:
        answer = client.get("/embedding-models")
    assert answer.status_code == 200, answer.text
    models = {model.pop("name"): model for model in answer.json()}
    assert models["sentence-transformers/all-MiniLM-L6-v2"] == {
        "dimension": 384,
        "max_input_tokens": 254,
        "multilingual": False,
        "runs": "in-process",
        "default": False,
    }
    e5 = models["multilingual-e5-small"]
    assert (e5["dimension"], e5["multilingual"], e5["runs"]) == (384, True, "in-process")
    assert e5["max_input_tokens"] == int(507 / 1.36)  # in the chunker's WordPiece tokens
    assert models["bge-m3-tei"] == {
        "dimension": 1024,
        "max_input_tokens": 510,
        "multilingual": True,
        "runs": "endpoint",
        "default": False,
    }
    assert models["hash-384"]["default"] is True
    assert "intfloat/multilingual-e5-small" not in models  # an alias is listed once


PROTEIN_JA = (
    "成人には毎日およそ50グラムのたんぱく質の摂取が勧められています。肉や豆、卵に多く含まれます。"
)
UNRELATED_JA = [
    "古い水車小屋の近くの川は毎年冬になると凍ります。",
    "この町の図書館は月曜日が休館日で、週末は夜まで開いています。",
    "新しい駅の建設は来年の春に始まる予定です。",
]
QUESTION_JA = "大人は一日にどれくらいタンパク質をとるべき？"


def _text(name: str, text: str) -> tuple[str, tuple[str, bytes]]:
    return ("file", (name, text.encode()))


def test_a_collection_names_its_model_and_is_embedded_and_searched_with_it(
    client: TestClient, instance: object, settings: Settings
) -> None:
    from support.api import assert_error
    from support.runs import ingest_landed

    made = client.post(
        "/collections", json={"name": "ja", "embedding_model": "multilingual-e5-small"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["embedding_model"] == "multilingual-e5-small"
    assert client.get("/collections/ja").json()["embedding_model"] == "multilingual-e5-small"
    plain = client.post("/collections", json={"name": "plain"}).json()
    assert plain["embedding_model"] == settings.embedding_model == "hash-384"
    assert_error(
        client.post("/collections", json={"name": "x", "embedding_model": "no-such-model"}),
        422,
        "unknown_embedding_model",
    )

    files = [_text("protein.txt", PROTEIN_JA)]
    files += [_text(f"other-{n}.txt", text) for n, text in enumerate(UNRELATED_JA)]
    ja = client.post("/collections/ja/documents", files=files).json()["documents"]
    [en] = client.post(
        "/collections/plain/documents", files=[_text("en.txt", "Oil prices rose again today.")]
    ).json()["documents"]
    ingest_landed(instance, str(settings.data_dir))

    def embedded(doc: dict) -> dict:
        report = client.get(doc["status_url"]).json()
        assert report["status"] == "indexed", report
        return report["stages"]["chunk_embeddings"]["metadata"]

    assert {embedded(doc)["model"] for doc in ja} == {"multilingual-e5-small"}
    assert embedded(en)["model"] == "hash-384"

    # The question shares few characters with its answer: only E5's query embedding finds it.
    dense = {"q": QUESTION_JA, "mode": "dense", "collection": "ja", "k": 4}
    hits = client.get("/search", params=dense).json()["results"]
    assert hits[0]["document_id"] == ja[0]["id"] and hits[0]["score"] > 0.5, hits

    # Two models, two vector spaces: fused by rank, so each collection's best scores 1/61.
    both = client.get(
        "/search",
        params=[
            ("q", QUESTION_JA),
            ("mode", "dense"),
            ("k", "2"),
            ("collection", "ja"),
            ("collection", "plain"),
        ],
    ).json()["results"]
    assert {h["collection"] for h in both} == {"ja", "plain"}
    assert [h["score"] for h in both] == [round(1 / 61, 6)] * 2
