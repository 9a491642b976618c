"""The vector index: one Chroma collection per collection of documents, on a Chroma server.

Chroma holds vectors, ids `<document id>:<chunk number>` and only the metadata that search
and citations need; chunk text lives in the Parquet catalog and is joined by id at query time.
Exactly one writer per collection at a time: callers hold the index-write pool around writes.

A `VectorIndex` opened on the configured collection is the `default` collection's index, and
`of(suffix)` opens another collection's, named `<configured>--<suffix>`. One Chroma collection
per collection keeps a collection's search off the others' vectors: no filter to apply, and an
HNSW graph a tenth of the size at ten collections.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag_pipeline.core.redact import redact
from rag_pipeline.core.stages.embedders import Vectors

# Chroma refuses larger upserts (max batch 5,461 on this version).
UPSERT_BATCH = 5000


class IndexUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class VectorRecord:
    chunk_no: int
    page: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class DocumentVectors:
    """What the index should hold for one document."""

    document_id: str
    filename: str
    records: Sequence[VectorRecord]
    vectors: Vectors


@dataclass(frozen=True)
class Hit:
    """A nearest chunk; its citation and text come from the catalog, which is the truth."""

    id: str
    document_id: str
    chunk_no: int
    score: float


def vector_id(document_id: str, chunk_no: int) -> str:
    return f"{document_id}:{chunk_no}"


def connect(url: str) -> Any:
    import chromadb
    from chromadb.config import Settings

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise IndexUnavailable(
            f"RAG_CHROMA_URL must look like http://host:port, got {redact(url)!r}"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=port,
            ssl=parsed.scheme == "https",
            settings=Settings(anonymized_telemetry=False),
        )
    except Exception as exc:
        # Messages reach terminals and logs: the URL's password stays out of them.
        raise IndexUnavailable(
            f"cannot reach the Chroma server at {redact(url)}: {redact(str(exc))}"
        ) from exc


def index_name(base: str, suffix: str) -> str:
    return f"{base}--{suffix}" if suffix else base


class VectorIndex:
    def __init__(
        self,
        client: Any,
        collection: str,
        base: str | None = None,
        opened: "dict[str, VectorIndex] | None" = None,
    ) -> None:
        self.name = collection
        self.base = base or collection
        self._client = client
        # The indexes opened from the same configured collection, by name, this one among them.
        self._opened = opened if opened is not None else {}
        try:
            self._collection = client.get_or_create_collection(
                collection,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        except Exception as exc:
            raise IndexUnavailable(
                f"cannot open the Chroma collection {collection!r}: {exc}"
            ) from exc
        self._opened.setdefault(collection, self)

    def of(self, suffix: str) -> "VectorIndex":
        """The index of the collection named by `suffix` (see `Collection.index_suffix`); the
        empty suffix is the configured collection's. Opened once, created if need be."""
        return self.named(index_name(self.base, suffix))

    def named(self, name: str) -> "VectorIndex":
        """An index opened from the same configured collection, by its Chroma name."""
        if name not in self._opened:
            VectorIndex(self._client, name, base=self.base, opened=self._opened)
        return self._opened[name]

    def suffixes(self) -> set[str]:
        """The suffixes of every collection index named after the configured one, in Chroma."""
        prefix = f"{self.base}--"
        try:
            names = [c.name for c in self._client.list_collections()]
        except Exception as exc:
            raise IndexUnavailable(f"the vector index did not answer: {exc}") from exc
        return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}

    def drop(self, suffix: str) -> None:
        """Remove a collection's whole index (deleting the collection); never the configured
        collection's own."""
        name = index_name(self.base, suffix)
        if name == self.base:
            raise ValueError("the configured collection's index is never dropped")
        self._opened.pop(name, None)
        try:
            self._client.delete_collection(name)
        except Exception as exc:
            if "does not exist" not in str(exc).lower():
                raise

    def count(self, document_id: str | None = None) -> int:
        if document_id is None:
            return int(self._collection.count())
        return len(self.ids_for(document_id))

    def document_ids(self, page: int = UPSERT_BATCH) -> set[str]:
        """Every document that has vectors in the collection."""
        found: set[str] = set()
        offset = 0
        while True:
            batch = self._collection.get(include=["metadatas"], limit=page, offset=offset)
            found.update(str(m["document_id"]) for m in batch["metadatas"] or [])
            if len(batch["ids"]) < page:
                return found
            offset += page

    def ids_for(self, document_id: str) -> set[str]:
        found = self._collection.get(where={"document_id": document_id}, include=[])
        return set(found["ids"])

    def ids_by_document(self, document_ids: Iterable[str]) -> dict[str, set[str]]:
        """Each document's vector ids, in one query; a document without vectors has none."""
        wanted = list(dict.fromkeys(document_ids))
        found: dict[str, set[str]] = {doc_id: set() for doc_id in wanted}
        if not wanted:
            return found
        where = {"document_id": {"$in": wanted}} if len(wanted) > 1 else {"document_id": wanted[0]}
        batch = self._collection.get(where=where, include=["metadatas"])
        for id_, meta in zip(batch["ids"], batch["metadatas"] or [], strict=True):
            found[str(meta["document_id"])].add(id_)
        return found

    def counts(self, document_ids: Iterable[str]) -> dict[str, int]:
        """Each document's number of vectors, in one query."""
        return {doc_id: len(ids) for doc_id, ids in self.ids_by_document(document_ids).items()}

    def replace_document(
        self,
        document_id: str,
        filename: str,
        records: Sequence[VectorRecord],
        vectors: Vectors,
    ) -> tuple[int, int]:
        """Make the index hold exactly these vectors for the document; returns (upserted, deleted).

        Upsert first, then delete the stale ids, so the document is searchable throughout.
        """
        done = self.replace_documents([DocumentVectors(document_id, filename, records, vectors)])
        return done[document_id]

    def replace_documents(self, group: Sequence[DocumentVectors]) -> dict[str, tuple[int, int]]:
        """`replace_document` for several documents in one round of queries (one read of the
        ids they hold, upserts of up to UPSERT_BATCH vectors, one delete of the stale ones);
        returns (upserted, deleted) by document."""
        for doc in group:
            if len(doc.records) != len(doc.vectors):
                raise ValueError(
                    f"{doc.document_id}: {len(doc.records)} records but {len(doc.vectors)} vectors"
                )
        held = self.ids_by_document(doc.document_id for doc in group)
        ids: list[str] = []
        metadatas: list[dict[str, Any]] = []
        stale: dict[str, set[str]] = {}
        for doc in group:
            own = [vector_id(doc.document_id, r.chunk_no) for r in doc.records]
            ids.extend(own)
            metadatas.extend(
                {
                    "document_id": doc.document_id,
                    "filename": doc.filename,
                    "chunk_no": r.chunk_no,
                    "page": r.page,
                    "char_start": r.char_start,
                    "char_end": r.char_end,
                }
                for r in doc.records
            )
            stale[doc.document_id] = held[doc.document_id] - set(own)
        vectors = (
            np.concatenate([np.asarray(doc.vectors, dtype=np.float32) for doc in group])
            if ids
            else np.zeros((0, 0), dtype=np.float32)
        )
        for start in range(0, len(ids), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            self._collection.upsert(
                ids=ids[start:end], embeddings=vectors[start:end], metadatas=metadatas[start:end]
            )
        self._delete_ids(sorted(set().union(*stale.values())))
        return {doc.document_id: (len(doc.records), len(stale[doc.document_id])) for doc in group}

    def delete_document(self, document_id: str) -> int:
        ids = sorted(self.ids_for(document_id))
        self._delete_ids(ids)
        return len(ids)

    def _delete_ids(self, ids: list[str]) -> None:
        for start in range(0, len(ids), UPSERT_BATCH):
            self._collection.delete(ids=ids[start : start + UPSERT_BATCH])

    def query(
        self,
        vector: Vectors,
        k: int,
        only: Collection[str] | None = None,
        excluding: Collection[str] | None = None,
    ) -> list[Hit]:
        """The k nearest chunks; with `only`, of those documents alone, with `excluding`, of
        all but those. The filter applies before the k are cut."""
        where: dict[str, Any] | None = None
        if only is not None:
            if not only:
                return []
            where = _one_of("document_id", sorted(only), "$in")
        elif excluding:
            where = _one_of("document_id", sorted(excluding), "$nin")
        try:
            # Chroma answers with what there is when k is more (nothing from an empty index):
            # no count() first, which was a second round trip on every query.
            result = self._collection.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=k,
                where=where,
                include=["distances"],
            )
        except Exception as exc:
            raise IndexUnavailable(f"the vector index did not answer: {exc}") from exc
        hits = []
        for id_, distance in zip(result["ids"][0], result["distances"][0], strict=True):
            document_id, chunk_no = id_.rsplit(":", 1)
            hits.append(Hit(id_, document_id, int(chunk_no), 1.0 - float(distance)))
        return hits


def _one_of(field: str, values: list[str], operator: str) -> dict[str, Any]:
    if len(values) == 1:
        return {field: {"$eq" if operator == "$in" else "$ne": values[0]}}
    return {field: {operator: values}}
