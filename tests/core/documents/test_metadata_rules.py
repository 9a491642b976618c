"""Document metadata: what may be kept, the size limit, and how a change merges."""

import pytest

from rag_pipeline.core.documents.metadata import MetadataError, merge, parse, validate


def test_strings_numbers_booleans_and_lists_of_strings_are_kept() -> None:
    kept = {"team": "red", "year": 2024, "score": 0.5, "draft": False, "tags": ["a", "b"]}
    assert validate(kept, 1024) == kept
    assert parse('{"a.b-c_1": "x"}', 1024) == {"a.b-c_1": "x"}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("[1]", "JSON object"),
        ("{bad", "valid JSON"),
        ('{"a": null}', "string, a number"),
        ('{"a": {"b": 1}}', "string, a number"),
        ('{"a": [1, 2]}', "string, a number"),
        ('{"filename": "x"}', "document's own"),
        ('{"$where": "x"}', "letters, digits"),
        ('{"": "x"}', "letters, digits"),
        ('{"a": NaN}', "finite"),
        ('{"a": "' + "x" * 600 + '"}', "limit is 512"),
    ],
)
def test_anything_else_is_refused_saying_why(raw: str, why: str) -> None:
    with pytest.raises(MetadataError, match=why):
        parse(raw, 512)


def test_json_nested_too_deep_to_read_is_refused_not_a_crash() -> None:
    with pytest.raises(MetadataError, match="valid JSON"):
        parse('{"a": ' + "[" * 3000 + "]" * 3000 + "}", 8192)


def test_a_change_merges_and_null_removes_a_key() -> None:
    assert merge({"a": "1", "b": "2"}, {"b": None, "c": ["x"]}, 1024) == {"a": "1", "c": ["x"]}
    with pytest.raises(MetadataError):
        merge({"a": "1"}, {"b": "x" * 2000}, 1024)
    with pytest.raises(MetadataError):
        merge({}, ["not", "an", "object"], 1024)
