"""The filter language of search, compiled to sets of documents.

    {"field": value}                           equal (for a list field: contains)
    {"field": {"$in": [v, ...]}}               one of
    {"field": {"$ne": v}}                      not equal (a document without the field matches)
    {"field": {"$gt" | "$gte" | "$lt" | "$lte": number or ISO date}}
    {"$and": [filter, ...]}, {"$or": [filter, ...]}

Several fields in one object must all hold, and so must several operators on one field.
`document_id`, `filename` and `media_type` are fields like the metadata's. A comparison with
a number matches numbers only; with an ISO date (`2024-05-01`, `2024-05-01T12:00:00Z`) it
matches strings holding ISO dates, compared as instants (a date without a time is midnight UTC,
a time without a zone is UTC).

Metadata belongs to documents, not chunks, so a filter selects documents: `compile_filter`
checks a filter once and `Filter.select` answers with the ids it admits, from an index of
values to documents (`Postings`) rather than by looking at each document.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

MAX_FILTER_BYTES = 8192
MAX_DEPTH = 8
COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$in", "$ne", *COMPARISONS)


class FilterError(ValueError):
    """A filter that cannot be applied; the message says where and why."""


class Postings:
    """What a filter is evaluated against: for each field, each value's documents."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[Any, set[str]]] = {}

    def add(self, doc_id: str, facets: Mapping[str, Any]) -> None:
        for field, value in facets.items():
            for one in value if isinstance(value, list) else [value]:
                if one is not None:
                    self.fields.setdefault(field, {}).setdefault(_key(one), set()).add(doc_id)

    def remove(self, doc_id: str, facets: Mapping[str, Any]) -> None:
        for field, value in facets.items():
            values = self.fields.get(field, {})
            for one in value if isinstance(value, list) else [value]:
                holders = values.get(_key(one)) if one is not None else None
                if holders is not None:
                    holders.discard(doc_id)
                    if not holders:
                        del values[_key(one)]

    def equal(self, field: str, value: Any) -> set[str]:
        return self.fields.get(field, {}).get(_key(value), set())

    def matching(self, field: str, test: Callable[[Any], bool]) -> set[str]:
        found: set[str] = set()
        for (_, value), holders in self.fields.get(field, {}).items():
            if test(value):
                found |= holders
        return found


def _key(value: Any) -> tuple[str, Any]:
    """Values by type, so that 1, 1.0 and True are not one value, and 1 and 1.0 are."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("string", value)


@dataclass(frozen=True)
class Filter:
    """A checked filter: `select` gives the documents of `universe` it admits."""

    node: Any
    text: str

    def select(self, postings: Postings, universe: set[str]) -> set[str]:
        return _select(self.node, postings, universe) & universe


def compile_filter(raw: Any) -> Filter | None:
    """Check a filter (a JSON string or the decoded object); None for no filter at all."""
    if raw is None or raw == "" or raw == {}:
        return None
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_FILTER_BYTES:
            raise FilterError(f"the filter is larger than {MAX_FILTER_BYTES} bytes")
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise FilterError(f"the filter is not valid JSON: {exc}") from exc
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > MAX_FILTER_BYTES:
        raise FilterError(f"the filter is larger than {MAX_FILTER_BYTES} bytes")
    return Filter(_parse(raw, "filter", 0), text)


def _parse(raw: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise FilterError(f"{where}: filters nest at most {MAX_DEPTH} deep")
    if not isinstance(raw, dict) or not raw:
        raise FilterError(f"{where}: a filter is a non-empty JSON object")
    parts: list[Any] = []
    for key, value in raw.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where}.{key}: takes a non-empty list of filters")
            parts.append(
                (key, [_parse(v, f"{where}.{key}[{n}]", depth + 1) for n, v in enumerate(value)])
            )
        elif key.startswith("$"):
            raise FilterError(f"{where}: unknown operator {key!r}; use $and or $or at this level")
        elif isinstance(value, dict):
            if not value:
                raise FilterError(f"{where}.{key}: give a value or an operator")
            for op, operand in value.items():
                parts.append(("field", key, op, _operand(f"{where}.{key}", op, operand)))
        else:
            parts.append(("field", key, "$eq", _operand(f"{where}.{key}", "$eq", value)))
    return ("$and", parts) if len(parts) > 1 else parts[0]


def _operand(where: str, op: str, value: Any) -> Any:
    if op not in OPERATORS:
        raise FilterError(f"{where}: unknown operator {op!r}; one of {', '.join(OPERATORS)}")
    if op == "$in":
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where}.$in: takes a non-empty list of values")
        return [_scalar(f"{where}.$in", v) for v in value]
    if op in COMPARISONS:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and (instant := _instant(value)) is not None:
            return instant
        raise FilterError(f"{where}.{op}: compares with a number or an ISO date, not {value!r}")
    return _scalar(f"{where}.{op}", value)


def _scalar(where: str, value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise FilterError(f"{where}: takes a string, a number or a boolean, not {value!r}")


def _instant(text: str) -> datetime | None:
    """An ISO date or date-time as an aware instant; None for any other string."""
    if not text[:4].isdigit() or len(text) < 10 or text[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _select(node: Any, postings: Postings, universe: set[str]) -> set[str]:
    kind = node[0]
    if kind == "$and":
        result = universe
        for part in node[1]:
            result = result & _select(part, postings, result)
            if not result:
                break
        return result
    if kind == "$or":
        found: set[str] = set()
        for part in node[1]:
            found |= _select(part, postings, universe)
        return found
    _, field, op, operand = node
    if op == "$eq":
        return set(postings.equal(field, operand))
    if op == "$in":
        return set().union(*(postings.equal(field, v) for v in operand))
    if op == "$ne":
        return universe - postings.equal(field, operand)
    return postings.matching(field, _comparison(op, operand))


def _comparison(op: str, operand: Any) -> Callable[[Any], bool]:
    compare: Callable[[Any, Any], bool] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }[op]
    if isinstance(operand, datetime):

        def test_instant(value: Any) -> bool:
            instant = _instant(value) if isinstance(value, str) else None
            return instant is not None and compare(instant, operand)

        return test_instant

    def test_number(value: Any) -> bool:
        return isinstance(value, float) and compare(value, operand)

    return test_number
