"""The filter language against a handful of documents: every operator, lists, dates, and the
errors a caller gets for what cannot be applied."""

import pytest

from rag_pipeline.core.retrieval.filters import FilterError, Postings, compile_filter

DOCS = {
    "a": {"team": "red", "year": 2020, "tags": ["x", "y"], "draft": True, "day": "2024-01-15"},
    "b": {
        "team": "blue",
        "year": 2022.5,
        "tags": ["y"],
        "draft": False,
        "day": "2024-06-01T10:00Z",
    },
    "c": {"team": "blue", "year": "2021", "filename": "c.md", "day": "not a date"},
    "d": {"filename": "d.pdf"},
}


def _select(raw: object) -> set[str]:
    postings = Postings()
    for doc_id, fields in DOCS.items():
        postings.add(doc_id, {"document_id": doc_id, **fields})
    where = compile_filter(raw)
    assert where is not None
    return where.select(postings, set(DOCS))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"team": "blue"}, {"b", "c"}),
        ('{"team": "blue"}', {"b", "c"}),
        ({"team": {"$eq": "red"}}, {"a"}),
        ({"tags": "y"}, {"a", "b"}),  # a list field contains the value
        ({"tags": {"$in": ["x", "z"]}}, {"a"}),
        ({"team": {"$ne": "blue"}}, {"a", "d"}),  # a document without the field matches
        ({"tags": {"$ne": "x"}}, {"b", "c", "d"}),
        ({"year": {"$gte": 2020, "$lt": 2022}}, {"a"}),  # "2021" is a string, not a number
        ({"year": 2020.0}, {"a"}),
        ({"draft": True}, {"a"}),
        ({"draft": 1}, set()),  # a boolean is not a number
        ({"day": {"$gt": "2024-02-01"}}, {"b"}),
        ({"day": {"$lte": "2024-01-15T00:00:00+00:00"}}, {"a"}),
        ({"$or": [{"team": "red"}, {"filename": "d.pdf"}]}, {"a", "d"}),
        ({"$and": [{"team": "blue"}, {"tags": "y"}]}, {"b"}),
        ({"team": "blue", "draft": False}, {"b"}),
        ({"document_id": {"$in": ["c", "zz"]}}, {"c"}),
        (
            {"$or": [{"$and": [{"team": "blue"}, {"year": {"$gt": 2022}}]}, {"tags": "x"}]},
            {"a", "b"},
        ),
    ],
)
def test_each_operator_selects_the_documents_it_says(raw: object, expected: set[str]) -> None:
    assert _select(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[]",
        {"$not": {"team": "red"}},
        {"team": {"$regex": "r.*"}},
        {"team": {}},
        {"$and": []},
        {"$or": {"team": "red"}},
        {"year": {"$gt": "soon"}},
        {"year": {"$gt": True}},
        {"tags": ["x"]},
        {"tags": {"$in": []}},
        {"team": {"$eq": {"nested": 1}}},
        {"a": {"$and": [{"b": 1}]}},
        {"x": "y" * 9000},
        "[" * 3000 + "]" * 3000,
    ],
)
def test_what_cannot_be_applied_is_refused_with_a_reason(raw: object) -> None:
    with pytest.raises(FilterError) as refused:
        compile_filter(raw)
    assert str(refused.value)


def test_no_filter_is_none_and_deep_nesting_is_bounded() -> None:
    assert compile_filter(None) is None and compile_filter("") is None
    deep: dict = {"team": "red"}
    for _ in range(10):
        deep = {"$and": [deep]}
    with pytest.raises(FilterError, match="nest"):
        compile_filter(deep)
