"""The fetcher against a real web server on loopback: redirects checked hop by hop, the
connection pinned to the checked address, the body cut at the cap, one bound on the whole."""

import socket
import time
from urllib.parse import quote

import pytest
from support.web import PDF, Site

from rag_pipeline.core.sources.addresses import AllowList
from rag_pipeline.core.sources.fetch import (
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    FetchTimeout,
    FetchTooLarge,
    fetch,
    system_resolver,
)

pytest_plugins = ["support.web"]

PAGE = "html/readability_mercurial.html"
CAP = 256 * 1024


def _policy(site: Site, allow: str | None = None, timeout_s: float = 5.0) -> FetchPolicy:
    entries = f"127.0.0.1:{site.port}" if allow is None else allow
    return FetchPolicy(AllowList.parse(entries), CAP, timeout_s)


def _redirect(site: Site, to: str) -> str:
    return site.url(f"/redirect?to={quote(to, safe='')}")


def test_an_allowed_page_is_fetched_with_its_name_and_final_url(site: Site, corpus) -> None:
    start = _redirect(site, f"/corpus/{PAGE}#part")
    got = fetch(start, _policy(site))
    assert got.data == (corpus / PAGE).read_bytes()
    assert got.url == site.url(f"/corpus/{PAGE}")  # after the redirect, without the fragment
    assert got.filename == "readability_mercurial.html"

    named = fetch(site.url("/download"), _policy(site))
    assert named.filename == "quarterly report.pdf" and named.data == (corpus / PDF).read_bytes()


def test_without_the_allow_list_loopback_is_refused_before_any_request(site: Site) -> None:
    with pytest.raises(FetchRefused) as refused:
        fetch(site.url(f"/corpus/{PAGE}"), _policy(site, allow=""))
    message = str(refused.value)
    assert "127.0.0.1" in message and "loopback" in message
    assert "RAG_FETCH_ALLOW_HOSTS" in message
    # Another port of an allowed host is another entry.
    with pytest.raises(FetchRefused):
        fetch(site.url(f"/corpus/{PAGE}"), _policy(site, allow=f"127.0.0.1:{site.port + 1}"))
    assert site.hosts == []


@pytest.mark.parametrize(
    "target",
    [
        # The same server under another name: fetched if the redirect went unchecked.
        "http://localhost:{port}/corpus/" + PAGE,
        "http://127.0.0.2:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_a_host_not_allowed_is_refused(site: Site, target: str) -> None:
    with pytest.raises(FetchRefused):
        fetch(_redirect(site, target.format(port=site.port)), _policy(site))
    assert site.hosts == [f"127.0.0.1:{site.port}"], "only the first hop reached a server"


def test_redirects_are_bounded(site: Site) -> None:
    with pytest.raises(FetchFailed, match="redirects more than 5 times"):
        fetch(site.url("/loop"), _policy(site))
    assert len(site.hosts) == 6


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(site: Site, corpus) -> None:
    """The system resolver does not know `pinned.test`: the fetch reaches the server only by
    connecting to the address the fetch's own resolution checked, and the server still sees
    the name in the Host header. Each hop is resolved once."""
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"] if host == "pinned.test" else system_resolver(host, port)

    policy = _policy(site, allow=f"pinned.test:{site.port}")
    got = fetch(f"http://pinned.test:{site.port}/corpus/{PAGE}", policy, resolver)
    assert got.data == (corpus / PAGE).read_bytes()
    assert site.hosts == [f"pinned.test:{site.port}"] and asked == ["pinned.test"]


def test_every_address_a_name_resolves_to_is_checked(site: Site) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    with pytest.raises(FetchRefused, match=r"two\.test resolves to 127\.0\.0\.1"):
        fetch(f"http://two.test:{site.port}/", _policy(site, allow=""), resolver)
    assert site.hosts == []


@pytest.mark.parametrize("path", ["/endless", "/huge"])
def test_a_body_over_the_cap_is_cut_as_it_streams(site: Site, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTooLarge, match=r"larger than the upload limit of 0\.25 MB"):
        fetch(site.url(path), _policy(site))
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("path", ["/drip", "/stall"])
def test_one_bound_covers_the_whole_fetch(site: Site, path: str) -> None:
    """A byte every 0.1 s never lets a single read wait long: only a bound on the whole fetch
    ends it."""
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(site.url(path), _policy(site, timeout_s=1.0))
    assert time.monotonic() - started < 2


def test_the_remotes_failures_are_fetch_failures(site: Site) -> None:
    with pytest.raises(FetchFailed, match="404"):
        fetch(site.url("/nothing-here"), _policy(site))
    with socket.socket() as unused:  # a port nothing listens on: connection refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    policy = FetchPolicy(AllowList.parse(f"127.0.0.1:{port}"), CAP, 5.0)
    with pytest.raises(FetchFailed, match=r"127\.0\.0\.1"):
        fetch(f"http://127.0.0.1:{port}/", policy)
    with pytest.raises(FetchFailed, match="could not be resolved"):
        fetch("http://no-such-host.invalid/", _policy(site))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "ftp://example.com/file.pdf",
        "javascript:alert(1)",
        "//example.com/page",
        "http://",
        "http://allowed@127.0.0.1:{port}/",
        "http://127.0.0.1:{port}@127.0.0.1:{port}/",
        "http://[::1/",
        "http://example.com/" + "a" * 2100,
    ],
)
def test_hostile_urls_are_refused_before_any_request(site: Site, url: str) -> None:
    with pytest.raises(FetchRefused):
        fetch(url.format(port=site.port), _policy(site))
    assert site.hosts == []
