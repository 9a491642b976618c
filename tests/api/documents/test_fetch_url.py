"""POST /collections/{name}/documents/url (and /documents/url): a page or file fetched by URL
is ingested as an upload of its bytes would be, under the fetch rules.

The remote is a real HTTP server on loopback (support.web), allowed through
RAG_FETCH_ALLOW_HOSTS as 127.0.0.1:<its port>; ingestion is driven in process.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from support.api import assert_error, assert_nothing_kept
from support.runs import ingest_landed
from support.web import Site

from rag_api.main import create_app
from rag_pipeline.settings import Settings

pytest_plugins = ["support.api", "support.web"]

ROOT = "root-key-for-fetch"
PAGE = "html/readability_mercurial.html"
PHRASE = "Once you have mastered the art of mutable history"


@pytest.fixture()
def settings(settings: Settings, site: Site) -> Settings:
    return settings.model_copy(
        update={
            "api_key": ROOT,
            "fetch_allow_hosts": f"127.0.0.1:{site.port}",
            "fetch_timeout_seconds": 2.0,
        }
    )


@pytest.fixture()
def admin(client):
    client.headers["Authorization"] = f"Bearer {ROOT}"
    return client


def _key(admin, role: str, collections: list[str]) -> dict[str, str]:
    made = admin.post(
        "/keys", json={"name": f"{role}-key", "role": role, "collections": collections}
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['secret']}"}


def test_a_page_is_ingested_and_searchable_with_its_source_url(
    admin, instance, settings, site: Site
) -> None:
    assert admin.post("/collections", json={"name": "web"}).status_code == 201
    writer = _key(admin, "writer", ["web"])
    # Reached through a redirect: source_url is where the page was found.
    start = site.url(f"/redirect?to={quote('/corpus/' + PAGE, safe='')}")

    response = admin.post(
        "/collections/web/documents/url",
        json={"url": start, "metadata": {"team": "docs"}},
        headers=writer,
    )

    assert response.status_code == 202, response.text
    [doc] = response.json()["documents"]
    assert doc == {
        "id": doc["id"],
        "filename": "readability_mercurial.html",
        "status": "queued",
        "status_url": f"/documents/{doc['id']}",
        "duplicate": False,
    }
    assert response.headers["location"] == doc["status_url"]
    ingest_landed(instance, str(settings.data_dir))
    status = admin.get(doc["status_url"]).json()
    assert status["status"] == "indexed" and status["collection"] == "web"
    assert status["metadata"] == {"team": "docs", "source_url": site.url(f"/corpus/{PAGE}")}
    hits = admin.get("/search", params={"q": PHRASE, "k": 3, "collection": "web"}).json()
    assert hits["results"][0]["document_id"] == doc["id"]
    assert PHRASE in " ".join(hit["text"] for hit in hits["results"])
    # The same bytes again are the same document, as for an upload.
    again = admin.post("/collections/web/documents/url", json={"url": start}, headers=writer)
    assert again.status_code == 200 and again.json()["documents"][0]["duplicate"] is True


def test_a_pdf_into_the_default_collection_takes_its_name_from_the_remote(
    admin, instance, settings, site: Site
) -> None:
    response = admin.post("/documents/url", json={"url": site.url("/download")})
    assert response.status_code == 202, response.text
    [doc] = response.json()["documents"]
    assert doc["filename"] == "quarterly report.pdf"
    ingest_landed(instance, str(settings.data_dir))
    status = admin.get(doc["status_url"]).json()
    assert status["status"] == "indexed" and status["collection"] == "default"
    hits = admin.get("/search", params={"q": "consetetur sadipscing elitr", "mode": "lexical"})
    assert [h["document_id"] for h in hits.json()["results"]][:1] == [doc["id"]]


def test_the_same_server_without_the_allow_list_is_refused(settings, instance, site: Site) -> None:
    closed = settings.model_copy(update={"fetch_allow_hosts": ""})
    with TestClient(create_app(closed, instance)) as client:
        client.headers["Authorization"] = f"Bearer {ROOT}"
        response = client.post("/documents/url", json={"url": site.url(f"/corpus/{PAGE}")})
    body = assert_error(response, 422, "fetch_refused")
    message = body["error"]["message"]
    assert "127.0.0.1" in message and "RAG_FETCH_ALLOW_HOSTS" in message
    assert site.hosts == []
    assert_nothing_kept(settings)


def _redirect(site: Site, to: str) -> str:
    return site.url(f"/redirect?to={quote(to, safe='')}")


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/",
        "http://localhost:{port}/corpus/" + PAGE,
        "http://169.254.169.254/",
    ],
)
def test_a_redirect_to_a_private_host_is_refused(admin, settings, site: Site, target: str) -> None:
    response = admin.post(
        "/documents/url", json={"url": _redirect(site, target.format(port=site.port))}
    )
    assert_error(response, 422, "fetch_refused")
    assert len(site.hosts) == 1  # the allowed first hop only
    assert_nothing_kept(settings)


@pytest.mark.parametrize("path", ["/endless", "/huge"])
def test_a_response_over_the_upload_limit_is_cut_at_it(
    admin, settings, site: Site, path: str
) -> None:
    started = time.monotonic()
    response = admin.post("/documents/url", json={"url": site.url(path)})
    body = assert_error(response, 413, "payload_too_large")
    assert "RAG_MAX_UPLOAD_MB" in body["error"]["message"]
    assert time.monotonic() - started < 2, "cut at the cap, not at the time bound"
    assert_nothing_kept(settings)


def test_the_remotes_failures_and_slowness_have_their_codes(admin, settings, site: Site) -> None:
    missing = admin.post("/documents/url", json={"url": site.url("/gone.html")})
    assert "404" in assert_error(missing, 502, "fetch_failed")["error"]["message"]
    started = time.monotonic()
    dripping = admin.post("/documents/url", json={"url": site.url("/drip")})
    assert_error(dripping, 504, "fetch_timeout")
    assert time.monotonic() - started < 3.5  # RAG_FETCH_TIMEOUT_SECONDS is 2
    assert_nothing_kept(settings)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/",
        "http://127.0.0.1:{port}@127.0.0.2:{port}/",
        "http://allowed@127.0.0.1:{port}/corpus/" + PAGE,
        "http://127.0.0.1:{port}/" + "a" * 5000,
        "not a url at all",
    ],
)
def test_hostile_urls_are_refused(admin, settings, site: Site, url: str) -> None:
    response = admin.post("/documents/url", json={"url": url.format(port=site.port)})
    assert_error(response, 422, "fetch_refused")
    assert site.hosts == []
    assert_nothing_kept(settings)


@pytest.fixture()
def tenants(admin) -> Iterator[dict[str, dict[str, str]]]:
    for name in ("acme", "globex"):
        assert admin.post("/collections", json={"name": name}).status_code == 201
    yield {
        "reader": _key(admin, "reader", ["acme"]),
        "acme-writer": _key(admin, "writer", ["acme"]),
        "globex-writer": _key(admin, "writer", ["globex"]),
    }


def test_only_a_writer_of_the_collection_may_fetch_into_it(
    admin, settings, site: Site, tenants
) -> None:
    url = {"url": site.url(f"/corpus/{PAGE}")}
    reader = admin.post("/collections/acme/documents/url", json=url, headers=tenants["reader"])
    assert_error(reader, 403, "forbidden")
    other = admin.post(
        "/collections/acme/documents/url", json=url, headers=tenants["globex-writer"]
    )
    assert_error(other, 404, "not_found")
    default = admin.post("/documents/url", json=url, headers=tenants["acme-writer"])
    assert_error(default, 404, "not_found")  # `default` is not its collection
    assert site.hosts == [], "nothing is fetched for a request that is refused anyway"
    assert_nothing_kept(settings)
    mine = admin.post("/collections/acme/documents/url", json=url, headers=tenants["acme-writer"])
    assert mine.status_code == 202, mine.text


@pytest.mark.slow
def test_a_slow_fetch_never_holds_up_other_requests(settings, instance, site: Site) -> None:
    """The fetch runs in the threadpool: while the remote stalls, /health answers."""
    patient = settings.model_copy(update={"fetch_timeout_seconds": 60.0})
    with TestClient(create_app(patient, instance)) as client, ThreadPoolExecutor(1) as pool:
        client.headers["Authorization"] = f"Bearer {ROOT}"
        slow = pool.submit(client.post, "/documents/url", json={"url": site.url("/stall")})
        deadline = time.monotonic() + 10
        while not site.hosts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert site.hosts, "the fetch never reached the server"
        assert client.get("/health").status_code == 200
        assert not slow.done(), "/health answered only once the fetch was over"
        site.stopping.set()  # the remote hangs up short of the length it declared
        assert_error(slow.result(timeout=30), 502, "fetch_failed")
