"""The README and docs/: a short manual, links that resolve, no lab notebook, generated pages
that are current."""

import json
import re
from pathlib import Path

import pytest
from support.env import REPO

from bench import report
from bench.report.markdown import num

README_MAX_LINES = 200
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# The user-facing pages; docs/design.md is the decision log and may keep its history.
USER_FACING = [page for page in PAGES if page.name != "design.md"]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
# A commit as the pages used to quote them: 7 to 40 hex digits, with a digit and a letter.
_COMMIT = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


def _prose(text: str) -> str:
    """The text outside code blocks and code spans, where Markdown makes links."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        base, n = slug(heading), 0
        while (candidate := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


def links(page: Path) -> list[str]:
    return _LINK.findall(_prose(page.read_text()))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor}")
    return broken


def test_the_readme_is_a_short_manual() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_pages_are_all_there() -> None:
    names = {page.name for page in PAGES}
    expected = {"usage.md", "configuration.md", "architecture.md", "operations.md"}
    expected |= {"security.md", "testing.md", "benchmarks.md", "design.md"}
    assert expected <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(REPO / "README.md")}
    pages = set(PAGES) - {REPO / "README.md", REPO / "docs" / "README.md"}
    assert pages - linked == set()


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# Title\n\n## A `code` heading, with (punctuation)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-code-heading-with-punctuation) [ok](#here)\n"
        "## Here\n"
        "[gone](missing.md) [no anchor](there.md#nowhere) [web](https://example.com)\n"
        "```\n[in code](not-a-link.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "there.md#nowhere: no heading #nowhere",
    ]


@pytest.mark.parametrize("page", USER_FACING, ids=lambda page: str(page.relative_to(REPO)))
def test_user_facing_pages_quote_no_commits(page: Path) -> None:
    assert _COMMIT.findall(page.read_text()) == []


def test_benchmarks_page_is_generated_from_the_results() -> None:
    assert (REPO / "docs" / "benchmarks.md").read_text() == report.render(), (
        "docs/benchmarks.md is stale: run `python -m bench report` (or `make docs`)"
    )


def test_the_benchmarks_page_follows_the_results(tmp_path: Path) -> None:
    for source in report.RESULTS.glob("*.json"):
        (tmp_path / source.name).write_text(source.read_text())
    search = json.loads((tmp_path / "search.json").read_text())
    search["latency"]["hybrid"]["p99_ms"] = 1234.56
    (tmp_path / "search.json").write_text(json.dumps(search))
    page = report.render(tmp_path)
    p50 = num(search["latency"]["hybrid"]["p50_ms"], 1)
    assert f"| hybrid | {p50} | 1,234.6 |" in page
    assert page != report.render()
    (tmp_path / "filtered.json").unlink()
    assert "## Filtered search" not in report.render(tmp_path)
