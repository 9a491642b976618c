"""Artifacts read back by the next stage of the same run come from memory, and only while the
file on disk is the one this process wrote."""

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from rag_pipeline.core.stages.chunking import Chunk
from rag_pipeline.core.storage import catalog
from rag_pipeline.core.storage.data_dir import DocumentStore


def _chunks(doc_id: str, text: str) -> list[Chunk]:
    return [Chunk(doc_id, 0, 1, 1, 0, len(text), 3, text)]


def test_what_was_just_written_reads_back_as_parquet_would(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    pages = [(1, 0, "first page"), (2, 11, "second page")]
    catalog.write_text(store, "doc", pages)
    catalog.write_chunks(store, "doc", _chunks("doc", "first page"))
    vectors = np.array([[0.6, 0.8]], dtype=np.float32)
    catalog.write_embeddings(store, "doc", [0], vectors, "model-x")

    assert catalog.read_text_pages(store, "doc") == [(1, "first page"), (2, "second page")]
    assert catalog.read_chunks(store, "doc") == _chunks("doc", "first page")
    assert catalog.read_chunks(store, "doc") == _chunks("doc", "first page")  # to index, too
    nos, read, model = catalog.read_embeddings(store, "doc")
    assert (nos, model) == ([0], "model-x") and np.array_equal(read, vectors)
    # And what is on disk says the same (the next process reads it from there).
    assert pq.read_table(store.artifact_path("text", "doc"))["text"].to_pylist() == [
        "first page",
        "second page",
    ]


def test_a_file_replaced_by_another_writer_is_read_from_disk(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    catalog.write_chunks(store, "doc", _chunks("doc", "old text"))
    path = store.artifact_path("chunks", "doc")
    # Another process chunks the document again: a new file renamed over the old one.
    other = tmp_path / "other.parquet"
    pq.write_table(pq.read_table(path).set_column(7, "text", [["new text"]]), other)
    os.replace(other, path)

    assert [c.text for c in catalog.read_chunks(store, "doc")] == ["new text"]
