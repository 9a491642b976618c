"""Dense search in a scope, against a real Chroma server: a filter that admits much of a
collection over-fetches its nearest chunks unfiltered and keeps the admitted ones; when too few
of them are admitted it asks the index with the filter. Either way the answer is the one the
filtered query gives: the nearest chunks of the admitted documents, as many as exist."""

from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.search import Part, Scope, SearchMode, candidates
from rag_pipeline.core.retrieval.vector_index import (
    DocumentVectors,
    VectorIndex,
    VectorRecord,
    connect,
)
from rag_pipeline.core.storage.data_dir import DocumentStore

DIM = 8
NEAR, FAR, CHUNKS = 300, 10, 5


class QueryVector:
    """Embeds every query as the first axis: what the index ranks by is known."""

    dimension = DIM
    model_name = "first-axis"
    multilingual = False

    def embed_query(self, text: str) -> np.ndarray:
        return np.eye(DIM, dtype=np.float32)[0]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    from support.env import running_chroma

    with running_chroma(tmp_path_factory.mktemp("chroma")) as url:
        index = VectorIndex(connect(url), "scoped")
        rng = np.random.default_rng(7)
        group = []
        for n in range(NEAR + FAR):
            axis = 0 if n < NEAR else 1  # near documents point where the query does
            vectors = np.eye(DIM, dtype=np.float32)[axis] + rng.normal(0, 0.2, (CHUNKS, DIM))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            records = [VectorRecord(c, 1, c * 10, c * 10 + 9) for c in range(CHUNKS)]
            group.append(DocumentVectors(_doc(n), f"{_doc(n)}.txt", records, vectors))
        index.replace_documents(group)
        yield index


def _doc(n: int) -> str:
    return f"near-{n:03d}" if n < NEAR else f"far-{n - NEAR:03d}"


def _dense(index: VectorIndex, part: Part, tmp_path: Path) -> list[tuple[tuple[str, int], float]]:
    return candidates(
        "anything",
        pool=5,
        mode=SearchMode.DENSE,
        embedder=QueryVector(),  # type: ignore[arg-type]
        index=index,
        lexicon=LexicalIndex(DocumentStore(tmp_path)),
        scope=Scope([part], None),
    )


@pytest.mark.parametrize(
    ("admitted", "asks_with_the_filter"),
    [
        # Half the near documents: their nearest chunks are among the unfiltered nearest.
        ({_doc(n) for n in range(0, NEAR, 2)}, False),
        # Only the far documents, 3% of the collection: the 1,000 unfiltered nearest are all
        # near ones, so the index is asked again with the filter.
        ({_doc(n) for n in range(NEAR, NEAR + FAR)}, True),
        # One far document: too selective to over-fetch at all.
        ({_doc(NEAR + 3)}, True),
        # Everything but one document, given as the documents left out.
        ({_doc(n) for n in range(1, NEAR + FAR)}, False),
    ],
    ids=["half-of-the-near", "only-the-far", "one-far", "all-but-one"],
)
def test_an_over_fetched_answer_is_the_filtered_answer(
    index: VectorIndex,
    admitted: set[str],
    asks_with_the_filter: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every = {_doc(n) for n in range(NEAR + FAR)}
    share = len(admitted) / len(every)
    left_out = every - admitted
    if len(left_out) < len(admitted):
        fast = Part("c", "", excluding=left_out, share=share)
        plain = Part("c", "", excluding=left_out)
    else:
        fast = Part("c", "", only=admitted, share=share)
        plain = Part("c", "", only=admitted)

    asked: list[bool] = []
    query = VectorIndex.query

    def recorded(self, vector, k, only=None, excluding=None):  # type: ignore[no-untyped-def]
        asked.append(only is not None or excluding is not None)
        return query(self, vector, k, only=only, excluding=excluding)

    monkeypatch.setattr(VectorIndex, "query", recorded)
    found = _dense(index, fast, tmp_path)
    assert any(asked) is asks_with_the_filter
    assert [key for key, _ in found] == [key for key, _ in _dense(index, plain, tmp_path)]
    assert len(found) == 5 and {doc for (doc, _), _ in found} <= admitted
    # And they are the admitted chunks nearest the query, by the vectors themselves.
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
