"""Waiting documents grouped into runs: by a budget of bytes and documents, then spread so
that every free run slot gets a share of the work."""

import bisect
import itertools
from collections.abc import Sequence

from rag_pipeline.core.registry import Document


def batches(docs: Sequence[Document], budget_bytes: int, max_docs: int) -> list[list[Document]]:
    """Consecutive documents, in order, grouped until the next one would take the batch over
    the byte budget or the document cap; a document over the budget is a batch of its own."""
    grouped: list[list[Document]] = []
    batch: list[Document] = []
    used = 0
    for doc in docs:
        size = doc.bytes or 0
        if batch and (used + size > budget_bytes or len(batch) >= max_docs):
            grouped.append(batch)
            batch, used = [], 0
        batch.append(doc)
        used += size
    if batch:
        grouped.append(batch)
    return grouped


def spread(grouped: Sequence[list[Document]], slots: int, min_bytes: int) -> list[list[Document]]:
    """The batches cut further, each into contiguous parts of about equal bytes, until there
    are as many as `slots` (the run slots free now) or no part could be cut again without
    falling under `min_bytes`.

    A budget caps a run's size; it must not leave a slot idle while one run holds all the
    work. Each extra part goes to the batch with the most bytes per part, so the shares stay
    even across batches (and so across collections)."""
    sizes = [sum(doc.bytes or 0 for doc in batch) for batch in grouped]
    parts = [1] * len(grouped)
    while sum(parts) < slots:
        can_cut = [
            i
            for i, batch in enumerate(grouped)
            if parts[i] < len(batch) and sizes[i] / (parts[i] + 1) >= min_bytes
        ]
        if not can_cut:
            break
        parts[max(can_cut, key=lambda i: sizes[i] / (parts[i] + 1))] += 1
    return [part for batch, n in zip(grouped, parts, strict=True) for part in _cut(batch, n)]


def _cut(batch: list[Document], n: int) -> list[list[Document]]:
    """`batch` in `n` contiguous, non-empty parts whose bytes are as near equal as document
    boundaries allow."""
    if n <= 1:
        return [batch]
    ends = [0]
    for doc in batch:
        ends.append(ends[-1] + (doc.bytes or 0))  # ends[i]: bytes of batch[:i]
    cuts = [0]
    for k in range(1, n):
        target = ends[-1] * k / n
        # Leave at least one document for each part still to come.
        lowest, highest = cuts[-1] + 1, len(batch) - (n - k)
        at = min(max(bisect.bisect_left(ends, target), lowest), highest)
        if at > lowest and target - ends[at - 1] < ends[at] - target:
            at -= 1
        cuts.append(at)
    cuts.append(len(batch))
    return [batch[a:b] for a, b in itertools.pairwise(cuts)]
