"""A run's documents, read from its tags: one partition, the sensor's list, or a bare range."""

from collections.abc import Callable, Sequence

import pytest

from rag_pipeline.orchestration.partitions import named_documents, range_tags, run_documents

ORDER = ["a-1", "b-2", "c-3", "d-4"]


def _order(asked: list[int]) -> Callable[[], Sequence[str]]:
    def ordered() -> Sequence[str]:
        asked.append(1)
        return ORDER

    return ordered


def test_the_sensor_s_tags_name_its_documents_even_with_an_end_deleted() -> None:
    asked: list[int] = []
    tags = range_tags(["b-2", "c-3", "d-4"])
    assert run_documents(tags, _order(asked)) == ["b-2", "c-3", "d-4"]
    # The list wins: the range's end is gone from the partitions, the others still run.
    assert run_documents(tags, lambda: ["b-2", "c-3"]) == ["b-2", "c-3", "d-4"]
    assert asked == [], "a run that names its documents needs no partition order"


def test_a_single_partition_run_names_its_one_document() -> None:
    asked: list[int] = []
    assert run_documents({"dagster/partition": "c-3"}, _order(asked)) == ["c-3"]
    assert named_documents({"dagster/partition": "c-3"}) == ["c-3"]
    assert asked == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [("b-2", "d-4", ["b-2", "c-3", "d-4"]), ("a-1", "a-1", ["a-1"]), ("gone-9", "c-3", [])],
)
def test_a_bare_range_is_resolved_by_the_positions_of_its_ends(
    start: str, end: str, expected: list[str]
) -> None:
    tags = {k: v for k, v in range_tags([start, end]).items() if not k.startswith("rag/")}
    assert named_documents(tags) is None
    asked: list[int] = []
    assert run_documents(tags, _order(asked)) == expected
    assert asked == [1]


def test_a_run_without_partition_tags_has_no_documents() -> None:
    assert run_documents({"rag/source": "cli"}, _order([])) == []
