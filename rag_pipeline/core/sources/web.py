"""A web site as a source: listed pages and a sitemap's, read through the safe fetcher.

Every request, robots.txt and sitemaps included, goes through `fetch.fetch` and its policy:
the allow-list (RAG_FETCH_ALLOW_HOSTS), redirects checked again, the size cap, the deadline.
- A sitemap is `<urlset><url><loc>`, or a `<sitemapindex>` of such sitemaps (one level). A
  sitemap with a DOCTYPE or an entity declaration is refused before it is parsed, so no
  entity is ever expanded (billion laughs, external entities).
- robots.txt is read once per host per sync and matched for `USER_AGENT`: a missing one
  (any 4xx) allows everything, one that cannot be read (5xx, refused, no answer) allows
  nothing, as RFC 9309 says.
- Requests to one host are at least `min_interval_s` apart.
"""

import time
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rag_pipeline.core.sources.fetch import (
    USER_AGENT,
    Fetched,
    FetchError,
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    checked_url,
    fetch,
    system_resolver,
)
from rag_pipeline.core.sources.s3 import SourceError

MAX_LISTED_URLS = 1000
_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@dataclass(frozen=True)
class WebConfig:
    urls: tuple[str, ...] = ()
    sitemap: str | None = None
    max_pages: int = 100
    same_host_only: bool = True

    def __post_init__(self) -> None:
        if not self.urls and self.sitemap is None:
            raise SourceError("a web source needs urls, a sitemap, or both")
        if len(self.urls) > MAX_LISTED_URLS:
            raise SourceError(f"a web source lists at most {MAX_LISTED_URLS} urls")
        if self.max_pages < 1:
            raise SourceError("max_pages must be at least 1")
        for url in (*self.urls, *([self.sitemap] if self.sitemap else [])):
            try:
                checked_url(url)
            except FetchRefused as exc:
                raise SourceError(f"{url!r}: {exc}") from None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "WebConfig":
        return cls(
            urls=tuple(config.get("urls") or ()),
            sitemap=config.get("sitemap"),
            max_pages=int(config.get("max_pages") or 100),
            same_host_only=bool(config.get("same_host_only", True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "urls": list(self.urls),
            "sitemap": self.sitemap,
            "max_pages": self.max_pages,
            "same_host_only": self.same_host_only,
        }


class SitemapError(ValueError):
    """A sitemap that is not one, or that declares a DOCTYPE or entities."""


@dataclass(frozen=True)
class Sitemap:
    index: bool  # a <sitemapindex>: its locs are sitemaps, not pages
    locs: list[str]


def parse_sitemap(data: bytes) -> Sitemap:
    """The locs of a sitemap or sitemap index; SitemapError for anything else, and for any
    document type declaration (entities live there), refused before the parser sees it."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise SitemapError("a sitemap with a DOCTYPE or ENTITY declaration is refused")
    if not head.startswith(b"<"):
        raise SitemapError("not XML")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SitemapError(f"not a sitemap: {exc}") from None
    tag = root.tag.removeprefix(_NS)
    if tag not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap: the root is <{tag}>")
    child = "url" if tag == "urlset" else "sitemap"
    locs = []
    for entry in root:
        if entry.tag.removeprefix(_NS) != child:
            continue
        for part in entry:
            if part.tag.removeprefix(_NS) == "loc" and part.text and part.text.strip():
                locs.append(part.text.strip())
    return Sitemap(index=tag == "sitemapindex", locs=locs)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class Website:
    """One sync's view of a web source: its pages, robots rules and paced fetches."""

    config: WebConfig
    policy: FetchPolicy
    min_interval_s: float = 0.5
    resolver: Callable[[str, int], list[str]] = system_resolver
    _last: dict[str, float] = field(default_factory=dict, init=False)
    _robots: dict[str, urllib.robotparser.RobotFileParser | FetchError] = field(
        default_factory=dict, init=False
    )

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        """One fetch under the policy, after waiting out the host's interval."""
        origin = _origin(url)
        last = self._last.get(origin)
        if last is not None:
            wait = last + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            return fetch(url, self.policy, self.resolver, headers)
        finally:
            self._last[origin] = time.monotonic()

    def pages(self) -> list[str]:
        """The listed URLs, then the sitemap's pages, once each, at most max_pages; off the
        listed hosts dropped when same_host_only. SourceError if the sitemap cannot be read."""
        found = list(self.config.urls)
        if self.config.sitemap:
            found += self._sitemap_pages(self.config.sitemap, depth=1)
        hosts = {_origin(u) for u in (*self.config.urls, self.config.sitemap) if u}
        pages = []
        for url in dict.fromkeys(found):
            if self.config.same_host_only and _origin(url) not in hosts:
                continue
            pages.append(url)
        return pages[: self.config.max_pages]

    def _sitemap_pages(self, url: str, depth: int) -> list[str]:
        try:
            sitemap = parse_sitemap(self.get(url).data)
        except (FetchError, SitemapError) as exc:
            raise SourceError(f"reading the sitemap {url}: {exc}") from exc
        if not sitemap.index:
            return sitemap.locs
        if depth == 0:
            return []  # an index inside an index: one level is all that is followed
        pages = []
        for inner in sitemap.locs:
            if self.config.same_host_only and _origin(inner) != _origin(url):
                continue
            pages += self._sitemap_pages(inner, depth - 1)
        return pages

    def allowed(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets USER_AGENT fetch it; FetchRefused when
        the host itself may not be reached (so it is never asked for robots.txt either)."""
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = self._read_robots(origin)
        rules = self._robots[origin]
        if isinstance(rules, FetchRefused):
            raise rules
        if isinstance(rules, FetchError):
            return False
        return rules.can_fetch(USER_AGENT, url)

    def _read_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | FetchError:
        rules = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            text = self.get(f"{origin}/robots.txt").data
        except FetchFailed as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                rules.parse([])  # no rules: everything allowed
                return rules
            return exc
        except FetchError as exc:
            return exc
        rules.parse(text.decode("utf-8", errors="replace").splitlines())
        return rules
