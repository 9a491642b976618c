"""The last stage, `vector_index`: documents' vectors into their collection's Chroma index and
their terms into lexical search, in groups (see `index_inputs`)."""

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rag_pipeline.core.retrieval import lexical
from rag_pipeline.core.retrieval.vector_index import DocumentVectors, VectorIndex, VectorRecord
from rag_pipeline.core.stages.chunking import (
    Chunk,
)
from rag_pipeline.core.stages.ingest import StageError, StageResult
from rag_pipeline.core.storage import catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

# Documents go to the index in groups, each written while its writer holds the index-write
# pool once: per-document rounds (a slot claimed and freed, the ids read, an upsert, a delete)
# cost more than the writes themselves for short documents. A group is small enough that a
# DELETE through the API, which waits for the group, still waits well under a second: Chroma
# (2 cores, 384 dimensions) wrote 256 new vectors in 0.1 s and rewrote them in 0.2 s, but took
# 3 s to rewrite 2,000, so the vector cap binds for long documents, not for short ones.
INDEX_GROUP_DOCUMENTS = 64
INDEX_GROUP_VECTORS = 256


@dataclass(frozen=True)
class IndexInput:
    """A document's embeddings and chunk positions, read ahead of its index write."""

    doc_id: str
    chunks: dict[int, Chunk]
    vectors: DocumentVectors
    model: str | None
    seconds: float


def index_inputs(
    store: DocumentStore,
    doc_ids: Iterable[str],
    max_documents: int | None = None,
    max_vectors: int | None = None,
    kind: str = "embeddings",
) -> Iterator[list[IndexInput | tuple[str, StageError]]]:
    """The documents' index inputs in groups of at most `max_documents` documents and
    `max_vectors` vectors (a larger document is a group of its own); a document that cannot be
    indexed comes as (id, error) in its group. Read without the index-write pool."""
    max_documents = max_documents or INDEX_GROUP_DOCUMENTS
    max_vectors = max_vectors or INDEX_GROUP_VECTORS
    group: list[IndexInput | tuple[str, StageError]] = []
    documents = vectors = 0
    for doc_id in doc_ids:
        try:
            item: IndexInput | tuple[str, StageError] = _index_input(store, doc_id, kind)
        except StageError as err:
            item = (doc_id, err)
        size = len(item.vectors.records) if isinstance(item, IndexInput) else 0
        if documents and (documents >= max_documents or vectors + size > max_vectors):
            yield group
            group, documents, vectors = [], 0, 0
        group.append(item)
        documents += 1
        vectors += size
    if group:
        yield group


def _index_input(store: DocumentStore, doc_id: str, kind: str) -> IndexInput:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    if record is None or not store.artifact_path(kind, doc_id).exists():
        raise StageError("missing_upstream", "chunk_embeddings has not been materialized")
    chunks = {c.chunk_no: c for c in catalog.read_chunks(store, doc_id)}
    chunk_nos, vectors, model = catalog.read_embeddings(store, doc_id, kind)
    if set(chunk_nos) != set(chunks):
        raise StageError(
            "stale_embeddings", "embeddings do not match the current chunks: re-run embedding"
        )
    records = [
        VectorRecord(n, chunks[n].page, chunks[n].char_start, chunks[n].char_end) for n in chunk_nos
    ]
    filename = record.filename or doc_id
    return IndexInput(
        doc_id,
        chunks,
        DocumentVectors(doc_id, filename, records, vectors),
        model,
        time.perf_counter() - started,
    )


def vector_index(
    store: DocumentStore, group: Sequence[IndexInput], index: VectorIndex
) -> dict[str, StageResult | StageError]:
    """Write a group's vectors, each document's to its collection's index (`index.of`), and
    publish their terms; the caller holds the index-write pool. A document deleted since its
    input was read is `missing_upstream`."""
    started = time.perf_counter()
    outcomes: dict[str, StageResult | StageError] = {}
    live = {
        doc.id: doc for doc in store.registry.reads.documents([i.doc_id for i in group]) if doc.live
    }
    homes = {
        c.name: c for c in store.registry.tenancy.collections({d.collection for d in live.values()})
    }
    ready = []
    for item in group:
        if item.doc_id in live and live[item.doc_id].collection in homes:
            ready.append(item)
        else:
            outcomes[item.doc_id] = StageError(
                "missing_upstream", "chunk_embeddings has not been materialized"
            )
    # Each collection's vectors go to its own index (opened, or created, only to be written).
    where: dict[str, VectorIndex] = {}
    written: dict[str, tuple[int, int]] = {}
    for name, home in homes.items():
        own = [item.vectors for item in ready if live[item.doc_id].collection == name]
        if own:
            where[name] = index.of(home.index_suffix)
            written.update(where[name].replace_documents(own))
    for item in ready:
        catalog.release_indexed_chunks(store, item.doc_id)
        if not lexical.terms_current(store, item.doc_id):
            # Chunked before lexical search existed, or by an older analyzer.
            terms = [(r.chunk_no, item.chunks[r.chunk_no].text) for r in item.vectors.records]
            lexical.write_terms(store, item.doc_id, terms)
        lexical.publish_terms(store, item.doc_id)
    seconds = time.perf_counter() - started
    total = max(1, sum(len(item.vectors.records) for item in ready))
    for item in ready:
        upserted, deleted = written[item.doc_id]
        outcomes[item.doc_id] = StageResult(
            {
                "vectors": upserted,
                "chunks": len(item.chunks),
                "stale_deleted": deleted,
                "collection": live[item.doc_id].collection,
                "vector_collection": where[live[item.doc_id].collection].name,
                "model": item.model or "",
                # The write is shared, so each document is charged its share of its time.
                "seconds": round(item.seconds + seconds * upserted / total, 3),
                "batch_documents": len(group),
            },
            supersedes=live[item.doc_id].supersedes,
        )
    return {item.doc_id: outcomes[item.doc_id] for item in group}
