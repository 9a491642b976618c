"""Waiting documents spread over the free run slots: contiguous, even shares, none too small."""

from types import SimpleNamespace
from typing import Any

from rag_pipeline.core.documents.batching import spread

KB = 1024


def _docs(*sizes_kb: int, prefix: str = "d") -> list[Any]:
    return [SimpleNamespace(id=f"{prefix}{i}", bytes=kb * KB) for i, kb in enumerate(sizes_kb)]


def _ids(parts: list[list[Any]]) -> list[list[str]]:
    return [[doc.id for doc in part] for part in parts]


def test_one_batch_is_cut_into_one_even_share_per_free_slot() -> None:
    batch = _docs(*[30] * 9)

    parts = spread([batch], slots=3, min_bytes=64 * KB)

    assert _ids(parts) == [["d0", "d1", "d2"], ["d3", "d4", "d5"], ["d6", "d7", "d8"]]


def test_shares_follow_bytes_not_document_counts() -> None:
    batch = _docs(200, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10)

    [first, second] = spread([batch], slots=2, min_bytes=64 * KB)

    assert _ids([first]) == [["d0"]], "the large document is a share of its own"
    assert len(second) == 19


def test_extra_runs_go_to_the_largest_batch_and_no_share_is_under_the_minimum() -> None:
    big = _docs(*[40] * 8, prefix="a")  # 320 KB
    small = _docs(50, 50, prefix="b")  # 100 KB: two halves would be under 64 KB

    parts = spread([big, small], slots=4, min_bytes=64 * KB)

    assert _ids(parts) == [["a0", "a1", "a2"], ["a3", "a4"], ["a5", "a6", "a7"], ["b0", "b1"]]
    assert all(sum(d.bytes for d in part) >= 64 * KB for part in parts)


def test_no_free_slot_or_too_little_work_leaves_the_batches_alone() -> None:
    batch = _docs(*[30] * 6)

    assert _ids(spread([batch], slots=0, min_bytes=64 * KB)) == [[d.id for d in batch]]
    assert _ids(spread([batch], slots=1, min_bytes=64 * KB)) == [[d.id for d in batch]]
    assert _ids(spread([batch[:2]], slots=2, min_bytes=64 * KB)) == [["d0", "d1"]]


def test_a_batch_is_never_cut_into_more_parts_than_it_has_documents() -> None:
    parts = spread([_docs(500, 500)], slots=8, min_bytes=64 * KB)

    assert _ids(parts) == [["d0"], ["d1"]]
