"""Web sources through the API: a site's listed and sitemap pages kept in step with a
collection, under the fetch rules, robots.txt and conditional requests.

The site is a real HTTP server on loopback (support.web) serving corpus HTML pages, allowed
through RAG_FETCH_ALLOW_HOSTS as 127.0.0.1:<its port>; `localhost:<its port>`, the same
server by another name, is not allowed. The runs a sync leads to are the landing-zone
sensor's, evaluated and run in process.
"""

from pathlib import Path

import pytest
from support.api import assert_error
from support.runs import ingest_landed
from support.web import Site

from rag_pipeline.settings import Settings

pytest_plugins = ["support.api", "support.web"]

ADMIN = "admin-key-for-web-sources"
MERCURIAL = ("html/readability_mercurial.html", "mastered the art of mutable history")
DOCKER = ("html/trafilatura_docs.docker.com.install.html", "Find your preferred operating system")
PRIVATE = "html/readability_yahoo-4.html"
OVERSIZED = "html/readability_bbc-1.html"  # 264 KB, over the tests' 0.25 MB cap
CHANGED = (
    b"<html><head><title>Install</title></head><body><h1>Install</h1>"
    b"<p>The install page now reads: xylophonic quokka marmalade, a changed page.</p>"
    b"</body></html>"
)


@pytest.fixture()
def settings(settings: Settings, site: Site) -> Settings:
    return settings.model_copy(
        update={
            "api_key": ADMIN,
            "fetch_allow_hosts": f"127.0.0.1:{site.port}",
            "fetch_timeout_seconds": 5.0,
            "web_min_interval_seconds": 0.0,
        }
    )


@pytest.fixture()
def admin(client):
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


def _search(admin, q: str) -> set[str]:
    response = admin.get("/search", params={"q": q, "k": 20, "mode": "lexical"})
    assert response.status_code == 200, response.text
    return {hit["document_id"] for hit in response.json()["results"]}


def _sitemap(*urls: str) -> bytes:
    locs = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
    ).encode()


def test_a_web_site_stays_in_step_with_its_collection(
    admin, site: Site, instance, settings, corpus: Path
) -> None:
    for path in (MERCURIAL[0], DOCKER[0], PRIVATE):
        folder = "private" if path == PRIVATE else "docs"
        site.serve(f"/{folder}/{Path(path).name}", (corpus / path).read_bytes())
    # Without a Content-Length: cut as it streams in, at the cap.
    oversized = f"/docs/{Path(OVERSIZED).name}"
    site.serve(oversized, (corpus / OVERSIZED).read_bytes(), declared=False)
    mercurial, docker = (site.url(f"/docs/{Path(p).name}") for p in (MERCURIAL[0], DOCKER[0]))
    private = f"/private/{Path(PRIVATE).name}"
    elsewhere = f"http://localhost:{site.port}/docs/elsewhere.html"
    site.serve("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.serve(
        "/sitemap.xml",
        _sitemap(
            mercurial,
            docker,
            site.url(private),
            site.url(oversized),
            elsewhere,
        ),
    )
    made = admin.post(
        "/collections/default/sources",
        json={
            "type": "web",
            "urls": [mercurial],
            "sitemap": site.url("/sitemap.xml"),
            "same_host_only": False,
        },
    )
    assert made.status_code == 201, made.text
    source = made.json()
    assert (source["type"], source["urls"], source["max_pages"]) == ("web", [mercurial], 100)
    assert admin.get(f"/collections/default/sources/{source['id']}").json() == source
    sync = f"/collections/default/sources/{source['id']}/sync"

    # The allowed pages become documents; the disallowed, the oversized and the one on a
    # host the fetch rules refuse are counted failed.
    first = admin.post(sync).json()
    assert (first["seen"], first["added"], first["failed"]) == (5, 2, 3), first
    assert site.asked(private) == [], "a page robots.txt disallows is never requested"
    assert len(site.asked(oversized)) == 1
    assert not [r for r in site.requests if r.host.startswith("localhost")], "never requested"
    assert sorted(ingest_landed(instance, str(settings.data_dir))) == sorted(first["documents"])
    docs = {d["metadata"]["source_url"]: d for d in admin.get("/documents").json()["items"]}
    assert set(docs) == {mercurial, docker}
    assert {d["status"] for d in docs.values()} == {"indexed"}
    assert all(d["metadata"]["source_version"] == 1 for d in docs.values())
    assert _search(admin, MERCURIAL[1]) & {docs[mercurial]["id"]}
    assert _search(admin, DOCKER[1]) & {docs[docker]["id"]}

    # No change: conditional requests, 304s, nothing registered.
    asked = len(site.requests)
    quiet = admin.post(sync).json()
    assert (quiet["added"], quiet["changed"], quiet["retired"], quiet["documents"]) == (
        0,
        0,
        0,
        [],
    )
    again = [
        r for r in site.requests[asked:] if r.path.startswith("/docs/") and "bbc" not in r.path
    ]
    assert len(again) == 2 and all(r.conditional for r in again), again
    assert ingest_landed(instance, str(settings.data_dir)) == []

    # Changed: a new version; search finds only the new text once it is indexed.
    site.serve(f"/docs/{Path(DOCKER[0]).name}", CHANGED)
    changed = admin.post(sync).json()
    assert (changed["added"], changed["changed"], changed["retired"]) == (0, 1, 0)
    [new_id] = changed["documents"]
    ingest_landed(instance, str(settings.data_dir))
    new = admin.get(f"/documents/{new_id}").json()
    assert new["status"] == "indexed"
    assert (new["metadata"]["source_version"], new["metadata"]["source_url"]) == (2, docker)
    assert admin.get(f"/documents/{docs[docker]['id']}").json()["status"] == "deleted"
    assert _search(admin, "quokka marmalade") == {new_id}
    assert not _search(admin, DOCKER[1]) & {docs[docker]["id"], new_id}

    # Gone once is only counted; gone twice in a row retires the document.
    site.fail(f"/docs/{Path(MERCURIAL[0]).name}", 404)
    once = admin.post(sync).json()
    assert (once["retired"], once["failed"]) == (0, 4)
    assert admin.get(f"/documents/{docs[mercurial]['id']}").json()["status"] == "indexed"
    assert docs[mercurial]["id"] in _search(admin, MERCURIAL[1])
    twice = admin.post(sync).json()
    assert (twice["retired"], twice["failed"]) == (1, 3)
    assert admin.get(f"/documents/{docs[mercurial]['id']}").json()["status"] == "deleted"
    assert docs[mercurial]["id"] not in _search(admin, MERCURIAL[1])
    shown = admin.get(f"/collections/default/sources/{source['id']}").json()
    assert shown["last_counts"]["retired"] == 1 and shown["last_error"] is None


def test_a_web_source_is_checked_when_made_and_its_sitemap_when_synced(admin, site) -> None:
    sources = "/collections/default/sources"
    assert_error(admin.post(sources, json={"type": "web"}), 422, "invalid_source")
    assert_error(
        admin.post(sources, json={"type": "web", "urls": ["file:///etc/passwd"]}),
        422,
        "invalid_source",
    )
    made = admin.post(sources, json={"type": "web", "sitemap": site.url("/no-sitemap.xml")})
    assert made.status_code == 201, made.text
    failed = admin.post(f"{sources}/{made.json()['id']}/sync")
    error = assert_error(failed, 502, "source_unreachable")
    assert "no-sitemap.xml" in error["error"]["message"]
