"""BM25 over per-document term artifacts, kept in memory as a few merged segments.

Each document's terms are an immutable Parquet file (`catalog/terms/<doc>.parquet`, written by
`document_chunks`); `vector_index` publishes it to `catalog/lexical/` in the same step that
writes the document's vectors, and deleting or replacing a document removes or replaces it
there. No global index is ever rebuilt by ingestion. A searcher follows that folder: it loads
documents that appear, drops those that go, and computes BM25 statistics (document
frequencies, average length) at query time over what is live, so scores always reflect exactly
the documents that are searchable.

In memory, documents sit in segments (term-sorted postings, like Lucene's); small segments are
merged as they accumulate, so a query touches a handful of arrays whatever the document count.
"""

import math
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rag_pipeline.core.retrieval.terms import ANALYZER_VERSION, analyze
from rag_pipeline.core.storage.data_dir import DocumentStore, atomic_link, atomic_path

TERMS_SCHEMA = pa.schema(
    [("chunk_no", pa.int32()), ("term", pa.string()), ("tf", pa.int32())],
    metadata={"analyzer_version": ANALYZER_VERSION},
)
# BM25 parameters; b and k1 were checked on the tuning half of the SQuAD questions (bench/eval).
K1 = 0.9
B = 0.75
MAX_SEGMENTS = 8
# A folder changed this recently may change again within the filesystem's timestamp tick.
_SETTLE_NS = 2_000_000_000


def write_terms(store: DocumentStore, doc_id: str, chunks: Sequence[tuple[int, str]]) -> int:
    """Write term frequencies per chunk for (chunk number, text) pairs; returns distinct terms."""
    chunk_nos: list[int] = []
    terms: list[str] = []
    tfs: list[int] = []
    vocabulary: set[str] = set()
    for chunk_no, text in chunks:
        # A chunk with no terms still counts towards BM25's chunk total: an empty term, tf 0.
        counts = Counter(analyze(text)) or Counter({"": 0})
        vocabulary.update(counts)
        for term, tf in counts.items():
            chunk_nos.append(chunk_no)
            terms.append(term)
            tfs.append(tf)
    table = pa.table(
        {
            "chunk_no": pa.array(chunk_nos, pa.int32()),
            "term": pa.array(terms, pa.string()),
            "tf": pa.array(tfs, pa.int32()),
        },
        schema=TERMS_SCHEMA,
    )
    with atomic_path(store.artifact_path("terms", doc_id)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return len(vocabulary - {""})


def terms_current(store: DocumentStore, doc_id: str) -> bool:
    """Whether the document's term artifact exists and was written by this analyzer."""
    try:
        metadata = pq.read_schema(store.artifact_path("terms", doc_id)).metadata or {}
    except FileNotFoundError:
        return False
    return metadata.get(b"analyzer_version") == ANALYZER_VERSION.encode()


def publish_terms(store: DocumentStore, doc_id: str) -> Path:
    """Make a document's terms searchable: an atomic link from `terms/` into `lexical/`."""
    target = store.artifact_path("lexical", doc_id)
    atomic_link(store.artifact_path("terms", doc_id), target)
    return target


@dataclass(frozen=True)
class LexicalHit:
    document_id: str
    chunk_no: int
    score: float


@dataclass
class _Document:
    doc_id: str
    chunk_nos: np.ndarray  # int32, one per chunk
    lengths: np.ndarray  # int32 terms per chunk
    term_ids: np.ndarray  # int64 distinct term ids
    term_chunks: np.ndarray  # int32 chunks holding each of term_ids
    rows: np.ndarray  # int32 (term id, local chunk index, tf) triples: shape (n, 3)
    stamp: tuple[int, int]
    segment: "_Segment | None" = None
    offset: int = 0


class _Segment:
    """Postings of several documents, sorted by term id, with a live mask over their chunks."""

    def __init__(self, documents: Sequence[_Document]) -> None:
        self.documents = list(documents)
        parts, owners, chunk_nos, lengths = [], [], [], []
        offset = 0
        for n, doc in enumerate(self.documents):
            doc.segment, doc.offset = self, offset
            rows = doc.rows.astype(np.int64)
            rows[:, 1] += offset
            parts.append(rows)
            owners.append(np.full(len(doc.chunk_nos), n, dtype=np.int32))
            chunk_nos.append(doc.chunk_nos)
            lengths.append(doc.lengths)
            offset += len(doc.chunk_nos)
        rows = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        self.terms, starts = np.unique(rows[:, 0], return_index=True)
        self.starts = np.append(starts, len(rows))
        self.chunk_rows = rows[:, 1].astype(np.int32)
        self.tfs = rows[:, 2].astype(np.float32)
        self.owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int32)
        self.chunk_nos = np.concatenate(chunk_nos) if chunk_nos else np.zeros(0, dtype=np.int32)
        self.lengths = (
            np.concatenate(lengths).astype(np.float32) if lengths else np.zeros(0, np.float32)
        )
        self.live = np.ones(offset, dtype=bool)

    @property
    def size(self) -> int:
        return len(self.live)

    def kill(self, doc: _Document) -> None:
        self.live[doc.offset : doc.offset + len(doc.chunk_nos)] = False

    def live_documents(self) -> list[_Document]:
        return [d for d in self.documents if d.segment is self]

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        at = int(np.searchsorted(self.terms, term_id))
        if at == len(self.terms) or self.terms[at] != term_id:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        start, end = self.starts[at], self.starts[at + 1]
        return self.chunk_rows[start:end], self.tfs[start:end]


class LexicalIndex:
    """BM25 over the published term artifacts of one store; safe to share between threads."""

    def __init__(self, store: DocumentStore, k1: float = K1, b: float = B) -> None:
        self.folder = store.catalog_dir / "lexical"
        self.k1, self.b = k1, b
        self._lock = threading.RLock()
        self._vocabulary: dict[str, int] = {}
        self._df = np.zeros(1024, dtype=np.int64)
        self._docs: dict[str, _Document] = {}
        self._segments: list[_Segment] = []
        self._chunks = 0
        self._length_sum = 0
        self._seen: tuple[int, int] | None = None

    @property
    def chunk_count(self) -> int:
        self.refresh()
        return self._chunks

    def document_ids(self) -> set[str]:
        self.refresh()
        return set(self._docs)

    def refresh(self) -> None:
        """Follow the folder: load new or replaced documents, forget removed ones."""
        try:
            info = self.folder.stat()
        except FileNotFoundError:
            info = None
        seen = (info.st_mtime_ns, info.st_ino) if info else (0, 0)
        with self._lock:
            if seen == self._seen and time.time_ns() - seen[0] > _SETTLE_NS:
                return
            on_disk: dict[str, tuple[int, int]] = {}
            if info is not None:
                with os.scandir(self.folder) as entries:
                    for entry in entries:
                        if entry.name.endswith(".parquet") and not entry.name.startswith("."):
                            stat = entry.stat()
                            on_disk[entry.name[: -len(".parquet")]] = (stat.st_ino, stat.st_size)
            for doc_id in [d for d, doc in self._docs.items() if on_disk.get(d) != doc.stamp]:
                self._remove(doc_id)
            added = []
            for doc_id, stamp in on_disk.items():
                if doc_id not in self._docs:
                    doc = self._load(doc_id, stamp)
                    if doc is not None:
                        added.append(doc)
            if added:
                self._add(added)
            self._seen = seen

    def _load(self, doc_id: str, stamp: tuple[int, int]) -> _Document | None:
        try:
            table = pq.read_table(self.folder / f"{doc_id}.parquet")
        except FileNotFoundError:
            return None  # removed since the folder was listed
        chunk_col = table["chunk_no"].to_numpy()
        tf_col = table["tf"].to_numpy()
        vocabulary = self._vocabulary
        term_ids = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for t in table["term"].to_pylist()),
            dtype=np.int64,
            count=len(table),
        )
        chunk_nos, local = np.unique(chunk_col, return_inverse=True)
        lengths = np.bincount(local, weights=tf_col, minlength=len(chunk_nos)).astype(np.int32)
        distinct, per_term = np.unique(term_ids, return_counts=True)
        rows = np.stack([term_ids, local.astype(np.int64), tf_col.astype(np.int64)], axis=1)
        return _Document(
            doc_id=doc_id,
            chunk_nos=chunk_nos.astype(np.int32),
            lengths=lengths,
            term_ids=distinct,
            term_chunks=per_term.astype(np.int32),
            rows=rows.astype(np.int32),
            stamp=stamp,
        )

    def _add(self, docs: list[_Document]) -> None:
        if len(self._vocabulary) > len(self._df):
            self._df = np.concatenate(
                [self._df, np.zeros(len(self._vocabulary) * 2 - len(self._df), np.int64)]
            )
        for doc in docs:
            np.add.at(self._df, doc.term_ids, doc.term_chunks)
            self._chunks += len(doc.chunk_nos)
            self._length_sum += int(doc.lengths.sum())
            self._docs[doc.doc_id] = doc
        self._segments.append(_Segment(docs))
        if len(self._segments) > MAX_SEGMENTS:
            self._merge()

    def _remove(self, doc_id: str) -> None:
        doc = self._docs.pop(doc_id)
        np.subtract.at(self._df, doc.term_ids, doc.term_chunks)
        self._chunks -= len(doc.chunk_nos)
        self._length_sum -= int(doc.lengths.sum())
        if doc.segment is not None:
            doc.segment.kill(doc)
            doc.segment = None

    def _merge(self) -> None:
        """Merge every segment but the largest; all of them once the rest grow comparable."""
        self._segments.sort(key=lambda s: s.size, reverse=True)
        largest, rest = self._segments[0], self._segments[1:]
        if sum(s.size for s in rest) * 4 >= largest.size:
            rest = self._segments
            self._segments = []
        else:
            self._segments = [largest]
        docs = [d for segment in rest for d in segment.live_documents()]
        if docs:
            self._segments.append(_Segment(docs))

    def query(self, text: str, k: int, allowed: Set[str] | None = None) -> list[LexicalHit]:
        """The k best chunks by BM25, best first; chunks sharing no term with the query are out,
        and with `allowed`, chunks of any other document (before the k are cut).

        Term statistics stay those of every searchable document, so a chunk scores the same
        whatever the scope."""
        self.refresh()
        wanted = Counter(analyze(text))
        with self._lock:
            ids = [(self._vocabulary[t], n) for t, n in wanted.items() if t in self._vocabulary]
            if not ids or not self._chunks:
                return []
            average = self._length_sum / self._chunks
            weighted = []
            for term_id, count in ids:
                df = int(self._df[term_id])
                if df > 0:
                    idf = math.log(1.0 + (self._chunks - df + 0.5) / (df + 0.5))
                    weighted.append((term_id, idf * count))
            hits: list[LexicalHit] = []
            for segment in self._segments:
                hits.extend(self._score(segment, weighted, average, k, allowed))
        hits.sort(key=lambda h: (-h.score, h.document_id, h.chunk_no))
        return hits[:k]

    def _score(
        self,
        segment: _Segment,
        weighted: list[tuple[int, float]],
        average: float,
        k: int,
        allowed: Set[str] | None,
    ) -> list[LexicalHit]:
        scores = np.zeros(segment.size, dtype=np.float32)
        norm = self.k1 * (1.0 - self.b + self.b * segment.lengths / average)
        for term_id, weight in weighted:
            rows, tfs = segment.postings(term_id)
            if len(rows):
                scores[rows] += weight * tfs * (self.k1 + 1.0) / (tfs + norm[rows])
        scores[~segment.live] = 0.0
        candidates = np.flatnonzero(scores)
        if allowed is not None and len(candidates):
            # Only the documents that scored are looked up, not every one in the segment.
            owners = segment.owner[candidates]
            scored = np.unique(owners)
            admitted = np.fromiter(
                (segment.documents[n].doc_id in allowed for n in scored),
                dtype=bool,
                count=len(scored),
            )
            candidates = candidates[np.isin(owners, scored[admitted])]
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        return [
            LexicalHit(
                document_id=segment.documents[segment.owner[row]].doc_id,
                chunk_no=int(segment.chunk_nos[row]),
                score=float(scores[row]),
            )
            for row in candidates
        ]
