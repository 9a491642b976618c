"""A web source's crawler: sitemaps parsed without expanding anything, robots.txt obeyed, one
host paced; against a real web server on loopback (support.web)."""

import time

import pytest
from support.web import Site

from rag_pipeline.core.sources.addresses import AllowList
from rag_pipeline.core.sources.fetch import FetchPolicy, FetchRefused
from rag_pipeline.core.sources.s3 import SourceError
from rag_pipeline.core.sources.web import SitemapError, WebConfig, Website, parse_sitemap

pytest_plugins = ["support.web"]

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def _urlset(*locs: str) -> bytes:
    urls = "".join(f"<url><loc> {loc} </loc><lastmod>2024-01-01</lastmod></url>" for loc in locs)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{urls}</urlset>'.encode()


def _site(site: Site, min_interval_s: float = 0.0, **config: object) -> Website:
    policy = FetchPolicy(AllowList.parse(f"127.0.0.1:{site.port}"), 1 << 20, 5.0)
    return Website(WebConfig.of(config), policy, min_interval_s)


def test_a_sitemap_and_a_sitemap_index_give_their_locs() -> None:
    assert parse_sitemap(_urlset("https://a.example/1", "https://a.example/2")).locs == [
        "https://a.example/1",
        "https://a.example/2",
    ]
    index = f"<sitemapindex {NS}><sitemap><loc>https://a.example/s.xml</loc></sitemap>"
    parsed = parse_sitemap(f"{index}</sitemapindex>".encode())
    assert parsed.index and parsed.locs == ["https://a.example/s.xml"]
    bare = parse_sitemap(b"<urlset><url><loc>https://a.example/x</loc></url></urlset>")
    assert not bare.index and bare.locs == ["https://a.example/x"]


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (  # billion laughs: a few hundred bytes that expand to gigabytes
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
            b"<urlset><url><loc>&lol3;</loc></url></urlset>",
            "DOCTYPE",
        ),
        (  # an external entity: a local file read into a loc
            b'<!doctype urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<urlset><url><loc>&x;</loc></url></urlset>",
            "DOCTYPE",
        ),
        (b"<html><body>not a sitemap</body></html>", "the root is <html>"),
        (b"no XML at all", "not XML"),
    ],
)
def test_a_hostile_or_foreign_document_is_no_sitemap(hostile: bytes, reason: str) -> None:
    with pytest.raises(SitemapError, match=reason):
        parse_sitemap(hostile)


def test_pages_come_from_the_list_and_the_sitemaps_on_the_same_host(site: Site) -> None:
    site.serve("/a.xml", _urlset(site.url("/p/1"), "https://elsewhere.example/x", site.url("/p/2")))
    site.serve("/b.xml", _urlset(site.url("/p/3"), site.url("/p/1")))
    entries = "".join(f"<sitemap><loc>{site.url(p)}</loc></sitemap>" for p in ("/a.xml", "/b.xml"))
    site.serve("/index.xml", f"<sitemapindex {NS}>{entries}</sitemapindex>".encode())
    web = _site(site, urls=[site.url("/p/0")], sitemap=site.url("/index.xml"))
    assert web.pages() == [site.url(f"/p/{n}") for n in range(4)]
    capped = _site(site, sitemap=site.url("/index.xml"), max_pages=2, same_host_only=False)
    assert capped.pages() == [site.url("/p/1"), "https://elsewhere.example/x"]

    site.serve("/broken.xml", b'<!DOCTYPE x [<!ENTITY a "b">]><urlset/>')
    with pytest.raises(SourceError, match="DOCTYPE"):
        _site(site, sitemap=site.url("/broken.xml")).pages()


def test_robots_txt_is_obeyed_and_a_missing_one_allows_everything(site: Site) -> None:
    site.serve(
        "/robots.txt",
        b"User-agent: *\nDisallow: /private/\n\nUser-agent: rag-ingest\nDisallow: /nobots/\n",
        "text/plain",
    )
    web = _site(site, urls=[site.url("/")])
    assert web.allowed(site.url("/open/page"))
    assert not web.allowed(site.url("/nobots/page"))  # the group naming rag-ingest applies
    assert web.allowed(site.url("/private/page"))  # ... and only that group
    assert len(site.asked("/robots.txt")) == 1, "read once per host per sync"

    site.fail("/robots.txt", 404)
    assert _site(site, urls=[site.url("/")]).allowed(site.url("/nobots/page"))
    site.fail("/robots.txt", 503)  # cannot be read: nothing is allowed
    assert not _site(site, urls=[site.url("/")]).allowed(site.url("/open/page"))


def test_a_host_the_policy_refuses_is_not_even_asked_for_robots_txt(site: Site) -> None:
    web = _site(site, urls=[site.url("/")])
    with pytest.raises(FetchRefused, match="RAG_FETCH_ALLOW_HOSTS"):
        web.allowed(f"http://localhost:{site.port}/page")
    assert not [r for r in site.requests if r.host.startswith("localhost")]


def test_requests_to_one_host_keep_their_interval(site: Site) -> None:
    site.serve("/p", b"<p>page</p>")
    web = _site(site, min_interval_s=0.3, urls=[site.url("/p")])
    start = time.monotonic()
    for _ in range(3):
        web.get(site.url("/p"))
    assert time.monotonic() - start >= 0.6
    assert len(site.asked("/p")) == 3
