"""Entry point 1 end to end: the API served by uvicorn, the real daemon, the real model.

Upload over HTTP, follow the SSE stream to `indexed`, find the text through /search, delete,
upload again, and see it indexed again.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.env import running_api


@pytest.fixture()
def api_url(daemon, daemon_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    # The API loads the real model before it answers: minutes on a busy machine, not seconds.
    with running_api(daemon_env, tmp_path / "api.log", "e2e-key", timeout=300) as url:
        yield url


def _follow(client: httpx.Client, status_url: str, limit: float = 300) -> list[str]:
    """Statuses from the SSE stream until it closes; keep-alives let us enforce the limit."""
    seen: list[str] = []
    deadline = time.monotonic() + limit
    with client.stream("GET", f"{status_url}/events", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["status"])
            if time.monotonic() > deadline:
                pytest.fail(f"not terminal after {limit} s: {seen}")
    return seen


@pytest.mark.e2e
def test_upload_follow_search_delete_and_upload_again(api_url: str, corpus: Path) -> None:
    headers = {"Authorization": "Bearer e2e-key"}
    pdf = (corpus / "pdf/pdfminer_naacl06-shinyama.pdf").read_bytes()
    phrase = "we let each article belong to several different clusters"
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        response = client.post("/documents", files={"file": ("naacl.pdf", pdf, "application/pdf")})
        assert response.status_code == 202
        doc = response.json()["documents"][0]

        seen = _follow(client, doc["status_url"])
        assert seen[0] == "queued" and seen[-1] == "indexed", seen

        top = client.get("/search", params={"q": phrase, "k": 1}).json()["results"][0]
        assert (top["document_id"], top["page"]) == (doc["id"], 3)

        assert client.delete(doc["status_url"]).status_code == 204
        assert client.get(doc["status_url"]).json()["status"] == "deleted"
        hits = client.get("/search", params={"q": phrase, "k": 5}).json()["results"]
        assert all(h["document_id"] != doc["id"] for h in hits)

        again = client.post("/documents", files={"file": ("naacl.pdf", pdf, "application/pdf")})
        assert again.status_code == 202 and again.json()["documents"][0]["id"] == doc["id"]
        assert _follow(client, doc["status_url"])[-1] == "indexed"
        assert (
            client.get("/search", params={"q": phrase, "k": 1}).json()["results"][0]["document_id"]
            == doc["id"]
        )


@pytest.mark.e2e
def test_a_tenant_uploads_into_its_collection_and_searches_it_with_a_filter(
    api_url: str, daemon_env: dict[str, str], corpus: Path
) -> None:
    """Collections, keys and filters with the real daemon and model: a writer key scoped to
    its collection uploads with metadata, the sensor's run says which collection it holds,
    and filtered search (in every mode, by POST) sees a metadata change at once."""
    from dagster import DagsterInstance

    root = {"Authorization": "Bearer e2e-key"}
    pdf = (corpus / "pdf/pdfminer_naacl06-shinyama.pdf").read_bytes()
    note = (corpus / "text/uns_norwich-city.txt").read_bytes()
    phrase = "we let each article belong to several different clusters"
    with httpx.Client(base_url=api_url, timeout=30) as client:
        assert client.post("/collections", json={"name": "lab"}, headers=root).status_code == 201
        key = client.post(
            "/keys", json={"name": "lab", "role": "writer", "collections": ["lab"]}, headers=root
        ).json()["secret"]
        client.headers["Authorization"] = f"Bearer {key}"
        docs = client.post(
            "/collections/lab/documents",
            files=[("file", ("naacl.pdf", pdf, "application/pdf")), ("file", ("n.txt", note))],
            data={"metadata": json.dumps({"year": 2006, "kind": "paper"})},
        ).json()["documents"]
        for doc in docs:
            assert _follow(client, doc["status_url"])[-1] == "indexed"
        paper = docs[0]["id"]

        for mode in ("hybrid", "dense", "lexical"):
            found = client.post(
                "/search", json={"q": phrase, "k": 3, "mode": mode, "filter": {"year": 2006}}
            ).json()["results"]
            assert found[0]["document_id"] == paper and found[0]["collection"] == "lab", mode
        changed = client.patch(f"/documents/{paper}", json={"metadata": {"kind": "draft"}})
        assert changed.status_code == 200
        drafts = client.post(
            "/search", json={"q": phrase, "k": 3, "filter": {"kind": "draft"}}
        ).json()["results"]
        assert {h["document_id"] for h in drafts} == {paper}
        assert (
            client.get("/search", params={"q": phrase, "collection": "default"}).status_code == 404
        )

    with DagsterInstance.from_config(daemon_env["DAGSTER_HOME"]) as instance:
        runs = [r for r in instance.get_runs() if paper in r.tags.get("rag/document_ids", "")]
        assert runs and {r.tags["rag/collection"] for r in runs} == {"lab"}
