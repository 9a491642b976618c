"""The Markdown docs/benchmarks.md is made of: numbers as the page shows them, paragraphs wrapped
at 100 columns, and tables."""

import textwrap
from collections.abc import Iterable
from typing import Any

Result = dict[str, Any]


def _missing(value: Any) -> bool:
    return value is None or value == ""


def num(value: Any, digits: int = 1) -> str:
    """A number with `digits` decimals and thousands separators; a dash for nothing."""
    if _missing(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def pct(value: Any) -> str:
    return "–" if _missing(value) else f"{value * 100:.0f}%"


def pair(first: Any, second: Any, digits: int = 1) -> str:
    return f"{num(first, digits)} / {num(second, digits)}"


def seconds(value: Any) -> str:
    return "–" if _missing(value) else f"{num(value, 1)} s"


def para(*parts: str) -> list[str]:
    """One paragraph, wrapped at 100 columns, and the blank line after it."""
    text = " ".join(part.strip() for part in parts if part.strip())
    return [textwrap.fill(text, 100, break_long_words=False, break_on_hyphens=False), ""]


def table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(head)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def measured(result: Result) -> list[str]:
    ran_at = result.get("ran_at")
    return [f"Measured {ran_at[:10]}.", ""] if isinstance(ran_at, str) else []
