"""Per-document Parquet artifacts, and an in-memory DuckDB over them for catalog queries.

No process ever holds a DuckDB database file open: DuckDB locks its file against every other
process, even readers. Each artifact is an immutable per-document Parquet file written
atomically, and each query opens a fresh in-memory connection over the current files.
"""

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rag_pipeline.core.stages.chunking import Chunk
from rag_pipeline.core.stages.embedders import Vectors
from rag_pipeline.core.storage.data_dir import DocumentStore, atomic_link, atomic_path

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("filename", pa.string()),
        ("media_type", pa.string()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("encoding", pa.string()),
        ("pages", pa.int32()),
        ("chars", pa.int64()),
    ]
)
TEXT_SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("page", pa.int32()),
        ("char_start", pa.int64()),
        ("text", pa.string()),
    ]
)
CHUNKS_SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("chunk_no", pa.int32()),
        ("page", pa.int32()),
        ("page_end", pa.int32()),
        ("char_start", pa.int64()),
        ("char_end", pa.int64()),
        ("tokens", pa.int32()),
        ("text", pa.string()),
    ]
)
SCHEMAS = {
    "documents": DOCUMENTS_SCHEMA,
    "text": TEXT_SCHEMA,
    "chunks": CHUNKS_SCHEMA,
}


# What this process wrote last, by artifact file: the next stage of the same run reads it back
# from here instead of decoding the Parquet it just wrote (a third of a small document's
# artifact time). Keyed by the file's identity (inode, size, mtime), so a file replaced by
# anyone since is read from disk; small files only, a few hundred of them.
_RECENT: "OrderedDict[str, tuple[tuple[int, int, int], Any]]" = OrderedDict()
_RECENT_LOCK = threading.Lock()
_RECENT_FILES = 512
_RECENT_MAX_BYTES = 256 * 1024


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _remember(path: Path, value: Any) -> None:
    try:
        identity = _identity(path)
    except OSError:
        return
    if identity[1] > _RECENT_MAX_BYTES:
        return
    with _RECENT_LOCK:
        _RECENT[str(path)] = (identity, value)
        _RECENT.move_to_end(str(path))
        while len(_RECENT) > _RECENT_FILES:
            _RECENT.popitem(last=False)


def _recalled(path: Path) -> Any | None:
    with _RECENT_LOCK:
        found = _RECENT.pop(str(path), None)  # each is read back once, by the next stage
    if found is None:
        return None
    try:
        return found[1] if _identity(path) == found[0] else None
    except OSError:
        return None


def _write(store: DocumentStore, kind: str, doc_id: str, table: pa.Table, value: Any = None) -> str:
    """Write an artifact atomically; `value` is what its reader would decode (kept a while)."""
    path = store.artifact_path(kind, doc_id)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    if value is not None:
        _remember(path, value)
    return str(path)


def write_document(store: DocumentStore, row: dict[str, Any]) -> str:
    return _write(
        store, "documents", row["document_id"], pa.Table.from_pylist([row], DOCUMENTS_SCHEMA)
    )


def write_text(store: DocumentStore, doc_id: str, pages: Sequence[tuple[int, int, str]]) -> str:
    """Pages as (page number, offset of the page in the document text, text)."""
    rows = [
        {"document_id": doc_id, "page": number, "char_start": start, "text": text}
        for number, start, text in pages
    ]
    table = pa.Table.from_pylist(rows, TEXT_SCHEMA)
    return _write(store, "text", doc_id, table, [(n, text) for n, _, text in pages])


def read_text_pages(store: DocumentStore, doc_id: str) -> list[tuple[int, str]]:
    path = store.artifact_path("text", doc_id)
    recalled = _recalled(path)
    if recalled is not None:
        return list(recalled)
    table = pq.read_table(path, columns=["page", "text"])
    return list(zip(table["page"].to_pylist(), table["text"].to_pylist(), strict=True))


def write_chunks(store: DocumentStore, doc_id: str, chunks: Sequence[Chunk]) -> str:
    rows = [asdict(chunk) for chunk in chunks]
    table = pa.Table.from_pylist(rows, CHUNKS_SCHEMA)
    return _write(store, "chunks", doc_id, table, list(chunks))


def hold_indexed_chunks(store: DocumentStore, doc_id: str) -> None:
    """Before a document is chunked again: keep the chunks its vectors in the index were made
    from, so search cites them until the new chunks are indexed. Kept once: a second reprocess
    before the first is indexed keeps the chunks that are still indexed."""
    current = store.artifact_path("chunks", doc_id)
    held = store.artifact_path("indexed_chunks", doc_id)
    # Published terms mean the document's vectors are in the index.
    if held.exists() or not current.exists() or not store.artifact_path("lexical", doc_id).exists():
        return
    atomic_link(current, held)


def release_indexed_chunks(store: DocumentStore, doc_id: str) -> None:
    """The document's current chunks are indexed: search cites them again."""
    store.artifact_path("indexed_chunks", doc_id).unlink(missing_ok=True)


def read_chunks(store: DocumentStore, doc_id: str) -> list[Chunk]:
    path = store.artifact_path("chunks", doc_id)
    recalled = _recalled(path)
    if recalled is not None:
        _remember(path, recalled)  # read twice in a run: to embed, then to index
        return list(recalled)
    return [Chunk(**row) for row in pq.read_table(path).to_pylist()]


def chunk_page(
    store: DocumentStore, doc_id: str, offset: int, limit: int
) -> tuple[list[Chunk], int]:
    """One page of a document's chunks in order, and how many it has: none before it is
    chunked, or once it is deleted."""
    try:
        chunks = sorted(read_chunks(store, doc_id), key=lambda chunk: chunk.chunk_no)
    except FileNotFoundError:
        return [], 0
    return chunks[offset : offset + limit], len(chunks)


def write_embeddings(
    store: DocumentStore,
    doc_id: str,
    chunk_nos: Sequence[int],
    vectors: Vectors,
    model: str,
    kind: str = "embeddings",
) -> str:
    """`kind` is `embeddings`, or `pending_embeddings` for a model switch's new generation."""
    dim = int(vectors.shape[1]) if len(vectors) else 0
    flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    table = pa.table(
        {
            "document_id": pa.array([doc_id] * len(chunk_nos), pa.string()),
            "chunk_no": pa.array(chunk_nos, pa.int32()),
            "model": pa.array([model] * len(chunk_nos), pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim)
            if dim
            else pa.array([], pa.list_(pa.float32())),
        }
    )
    kept = (list(chunk_nos), np.asarray(vectors, dtype=np.float32), model) if dim else None
    return _write(store, kind, doc_id, table, kept)


def read_embeddings(
    store: DocumentStore, doc_id: str, kind: str = "embeddings"
) -> tuple[list[int], Vectors, str | None]:
    path = store.artifact_path(kind, doc_id)
    recalled = _recalled(path)
    if recalled is not None:
        chunk_nos, vectors, model = recalled
        return list(chunk_nos), vectors.copy(), model
    table = pq.read_table(path)
    chunk_nos = table["chunk_no"].to_pylist()
    if not chunk_nos:
        return [], np.zeros((0, 0), dtype=np.float32), None
    column = table["vector"].combine_chunks()
    dim = column.type.list_size
    vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    return chunk_nos, vectors.astype(np.float32), str(table["model"][0].as_py())


@dataclass(frozen=True)
class ChunkRow:
    document_id: str
    chunk_no: int
    filename: str
    page: int
    char_start: int
    char_end: int
    text: str


class Catalog:
    """`documents` and `chunks` views over the Parquet artifacts, in an in-memory DuckDB; with
    `only`, over those documents alone (a collection's, say)."""

    def __init__(self, store: DocumentStore, only: Collection[str] | None = None) -> None:
        self.store = store
        self.only = only

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        scope = ""
        if self.only is not None:
            ids = pa.array(sorted(self.only), pa.string())
            con.register("scope_ids", pa.table({"document_id": ids}))
            scope = " WHERE document_id IN (SELECT document_id FROM scope_ids)"
        for kind, schema in SCHEMAS.items():
            folder = self.store.catalog_dir / kind
            if any(folder.glob("*.parquet")):
                source = f"read_parquet('{folder}/*.parquet', union_by_name = true)"
            else:
                cols = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS {f.name}" for f in schema)
                source = f"(SELECT {cols} WHERE false)"
            con.execute(f"CREATE VIEW {kind}_raw AS SELECT * FROM {source}{scope}")
        con.execute(
            """
            CREATE VIEW chunks AS
            SELECT c.document_id, c.chunk_no, c.page, c.page_end, c.char_start, c.char_end,
                   c.tokens, c.text
            FROM chunks_raw c JOIN documents_raw d USING (document_id)
            """
        )
        con.execute(
            """
            CREATE VIEW documents AS
            SELECT d.document_id, d.filename, d.media_type, d.sha256, d.bytes, d.encoding,
                   d.pages, d.chars, CAST(coalesce(n.chunks, 0) AS BIGINT) AS chunks
            FROM documents_raw d
            LEFT JOIN (SELECT document_id, count(*) AS chunks FROM chunks_raw GROUP BY 1) n
            USING (document_id)
            """
        )
        con.execute("CREATE VIEW pages AS SELECT * FROM text_raw")
        return con

    def query(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.connect() as con:
            cursor = con.execute(sql, list(params))
            columns = [d[0] for d in cursor.description or []]
            return columns, cursor.fetchall()

    def chunk_rows(self, ids: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ChunkRow]:
        """Citation and text by (document id, chunk number), read only from those documents.

        Search calls this on every query: each document's chunks are read once and cached
        while its files stay the same (same inode and mtime), which turns a ~30 ms Parquet
        scan into a dictionary lookup.
        """
        found: dict[tuple[str, int], ChunkRow] = {}
        for doc_id in sorted({doc for doc, _ in ids}):
            # While a reprocess waits for its new vectors, the chunks the index still holds.
            path = self.store.artifact_path("indexed_chunks", doc_id)
            if not path.exists():
                path = self.store.artifact_path("chunks", doc_id)
            try:
                chunks = path.stat()
                document = self.store.artifact_path("documents", doc_id).stat()
                rows = _document_rows(
                    str(path),
                    str(self.store.artifact_path("documents", doc_id)),
                    doc_id,
                    (chunks.st_ino, chunks.st_mtime_ns, document.st_ino, document.st_mtime_ns),
                )
            except FileNotFoundError:
                continue  # deleted since it was ranked: not a result
            found.update(rows)
        return {key: found[key] for key in ids if key in found}


@lru_cache(maxsize=512)
def _document_rows(
    chunks_path: str, document_path: str, doc_id: str, stamp: tuple[int, int, int, int]
) -> dict[tuple[str, int], ChunkRow]:
    """One document's chunks with citations; `stamp` changes whenever its files are replaced."""
    filename = pq.read_table(document_path)["filename"][0].as_py()
    table = pq.read_table(
        chunks_path, columns=["chunk_no", "page", "char_start", "char_end", "text"]
    )
    return {
        (doc_id, row["chunk_no"]): ChunkRow(document_id=doc_id, filename=filename, **row)
        for row in table.to_pylist()
    }


def _duck_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_int32(arrow_type):
        return "INTEGER"
    return "BIGINT"
