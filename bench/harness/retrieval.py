"""The search index of an ingested stack, grown by copies of its documents, and the floor a
hand-rolled dense query sets for /search."""

import os
import shutil
import time
from typing import Any

from bench.harness.stack import MODEL


def copy_document(store: Any, index: Any, doc: str, new: str) -> tuple[str, int]:
    """Copy an ingested document under a new id: its catalog rows, its vectors (into `index`)
    and its published terms; returns its file name and number of chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rag_pipeline.core.retrieval.vector_index import VectorRecord
    from rag_pipeline.core.storage.catalog import read_chunks, read_embeddings

    for kind in ("documents", "chunks"):
        table = pq.read_table(store.artifact_path(kind, doc))
        column = pa.array([new] * len(table), pa.string())
        table = table.set_column(table.schema.get_field_index("document_id"), "document_id", column)
        pq.write_table(table, store.artifact_path(kind, new))
    chunks = {c.chunk_no: c for c in read_chunks(store, doc)}
    chunk_nos, vectors, _ = read_embeddings(store, doc)
    records = [
        VectorRecord(n, chunks[n].page, chunks[n].char_start, chunks[n].char_end) for n in chunk_nos
    ]
    filename = pq.read_table(store.artifact_path("documents", doc))["filename"][0].as_py()
    index.replace_document(new, filename, records, vectors)
    shutil.copy(store.artifact_path("terms", doc), store.artifact_path("lexical", new))
    return filename, len(chunk_nos)


def dense_floor(queries: list[str], k: int, suffix: str = "", model: str = MODEL) -> list[float]:
    """Milliseconds of a hand-rolled dense query (embed, then ask Chroma for the top k), in this
    process, against the index of the collection named by `suffix` (`default`'s when empty)."""
    from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
    from rag_pipeline.core.stages.embedders import get_embedder

    embedder = get_embedder(model)
    embedder.use_threads(1)  # as the API does
    root = VectorIndex(connect(os.environ["RAG_CHROMA_URL"]), os.environ["RAG_CHROMA_COLLECTION"])
    index = root.of(suffix)
    for q in queries[:20]:
        index.query(embedder.embed_query(q), k)
    latencies = []
    for q in queries:
        started = time.perf_counter()
        index.query(embedder.embed_query(q), k)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies
