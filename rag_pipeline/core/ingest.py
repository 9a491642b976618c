"""The five stages of ingestion as plain functions, one document (or one batch) at a time.

Each stage reads the previous stage's artifact from the store, so any subset of stages can be
re-run. A document that cannot go on raises `StageError` with a machine-readable code.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.core import catalog, landing, lexical
from rag_pipeline.core.chunking import (
    PAGE_SEPARATOR,
    Chunk,
    ChunkingError,
    chunk_pages,
    load_tokenizer,
)
from rag_pipeline.core.embedding import Embedder
from rag_pipeline.core.extract import (
    DEFAULT_OCR,
    LOW_CONFIDENCE,
    ExtractionError,
    OcrOptions,
    OcrPages,
    extract_document,
    garbled_share,
    sniff_media_type,
)
from rag_pipeline.core.extract.sniff import MEDIA_PPTX, MEDIA_XLSX
from rag_pipeline.core.index import DocumentVectors, VectorIndex, VectorRecord
from rag_pipeline.core.store import DocumentStore, sha256_bytes


class StageError(Exception):
    """A document that cannot go on: `code` is machine-readable, the message one readable line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class StageResult:
    """What a stage did for one document, as metadata for its materialization."""

    metadata: dict[str, Any] = field(default_factory=dict)
    # vector_index: the older version this document replaces, now that it is indexed.
    supersedes: str | None = None


def _timed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def raw_document(store: DocumentStore, doc_id: str) -> StageResult:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    if record is None:
        raise StageError(
            "source_missing",
            f"no registered source for {doc_id}: add it with `rag-pipeline add` or the API",
        )
    try:
        data, path = store.keep_raw(record)
    except FileNotFoundError as exc:
        raise StageError("source_missing", f"the source file is gone: {exc.filename}") from exc
    digest = sha256_bytes(data)
    if digest != record.sha256:
        raise StageError("checksum_mismatch", "stored bytes do not match the registered sha256")
    filename = record.filename or doc_id
    try:
        # Sniffed once at registration; documents registered before that are sniffed here.
        media_type = record.media_type or sniff_media_type(data, filename)
    except ExtractionError as exc:
        raise StageError(exc.code, exc.message) from exc
    if record.landing_path and record.source_path:
        _retire_landing_copy(store, record.landing_path, Path(record.source_path), digest)
    return StageResult(
        {
            "filename": filename,
            "collection": record.collection,
            "document_metadata": record.metadata,
            "bytes": len(data),
            "sha256": digest,
            "media_type": media_type,
            "path": str(path),
            "seconds": _timed(started),
        }
    )


def _retire_landing_copy(store: DocumentStore, relpath: str, source: Path, digest: str) -> None:
    """The raw store holds the bytes now: move the landing file on to processed/."""
    landed = store.landing_dir / relpath
    try:
        if landed != source or sha256_bytes(landed.read_bytes()) != digest:
            return  # replaced at the same path since: that file is a new version
    except FileNotFoundError:
        return
    landing.move_to(store, relpath, landing.PROCESSED)


def document_text(
    store: DocumentStore, doc_id: str, timeout_s: float, ocr: OcrOptions | None = DEFAULT_OCR
) -> StageResult:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    raw = store.raw_path(doc_id)
    if record is None or not raw.exists():
        raise StageError("missing_upstream", "raw_document has not been materialized")
    data = raw.read_bytes()
    try:
        extracted = extract_document(data, record.filename or doc_id, timeout_s=timeout_s, ocr=ocr)
    except ExtractionError as exc:
        raise StageError(exc.code, exc.message) from exc
    pages = []
    offset = 0
    for page in extracted.pages:
        pages.append((page.number, offset, page.text))
        offset += len(page.text) + len(PAGE_SEPARATOR)
    catalog.write_document(
        store,
        {
            "document_id": doc_id,
            "filename": record.filename,
            "media_type": extracted.media_type,
            "sha256": record.sha256,
            "bytes": len(data),
            "encoding": extracted.encoding,
            "pages": extracted.page_count,
            "chars": extracted.chars,
        },
    )
    path = catalog.write_text(store, doc_id, pages)
    return StageResult(
        {
            "media_type": extracted.media_type,
            "encoding": extracted.encoding or "",
            "pages": extracted.page_count,
            "pages_with_text": sum(1 for p in extracted.pages if p.text.strip()),
            # Pages pypdf could not read; the rest of the document is still searchable.
            "pages_failed": len(extracted.failed_pages),
            "chars": extracted.chars,
            "garbled_share": round(garbled_share(extracted.text), 4),
            **_ocr_metadata(extracted.ocr),
            "path": path,
            "seconds": _timed(started),
        }
    )


# A slide or a sheet is a unit that a search hit must cite alone: no chunk spans two.
PAGES_APART = (MEDIA_PPTX, MEDIA_XLSX)


def _ocr_metadata(ocr: OcrPages | None) -> dict[str, Any]:
    """Which pages OCR read and how sure it was, page by page; pages under LOW_CONFIDENCE
    fail the readability check."""
    if ocr is None:
        return {"ocr": False}
    return {
        "ocr": True,
        "ocr_pages": list(ocr.pages),
        "ocr_confidence": list(ocr.confidence),
        "ocr_languages": sorted(set(ocr.languages)),
        "ocr_low_confidence_pages": list(ocr.low(LOW_CONFIDENCE)),
    }


def document_chunks(
    store: DocumentStore,
    doc_id: str,
    *,
    tokenizer_path: str,
    max_tokens: int,
    chunk_size: int,
    chunk_overlap: int,
) -> StageResult:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    if record is None or not store.artifact_path("text", doc_id).exists():
        raise StageError("missing_upstream", "document_text has not been materialized")
    size = record.chunk_size or chunk_size
    overlap = record.chunk_overlap if record.chunk_overlap is not None else chunk_overlap
    pages = catalog.read_text_pages(store, doc_id)
    try:
        chunks = chunk_pages(
            doc_id,
            pages,
            load_tokenizer(tokenizer_path),
            chunk_size=size,
            chunk_overlap=overlap,
            max_tokens=max_tokens,
            pages_apart=record.media_type in PAGES_APART,
        )
    except ChunkingError as exc:
        raise StageError("invalid_options", str(exc)) from exc
    if not chunks:
        raise StageError("empty_text", "the document has no text to chunk")
    catalog.hold_indexed_chunks(store, doc_id)
    path = catalog.write_chunks(store, doc_id, chunks)
    terms = lexical.write_terms(store, doc_id, [(c.chunk_no, c.text) for c in chunks])
    tokens = [c.tokens for c in chunks]
    return StageResult(
        {
            "chunks": len(chunks),
            "chunk_size": size,
            "chunk_overlap": overlap,
            "tokens_max": max(tokens),
            "tokens_mean": round(sum(tokens) / len(tokens), 1),
            "distinct_terms": terms,
            "path": path,
            "seconds": _timed(started),
        }
    )


EMBED_SLICE = 512


def chunk_embeddings(
    store: DocumentStore,
    doc_ids: Sequence[str],
    embedder: Embedder,
    before_slice: Callable[[], None] = lambda: None,
) -> dict[str, StageResult | StageError]:
    """Embed several documents in shared batches: the model sees chunks, not documents.

    The chunks go in slices, with `before_slice` called ahead of each, so a long embedding can
    adapt (for instance its thread count) to what else runs on the machine meanwhile.
    """
    started = time.perf_counter()
    outcomes: dict[str, StageResult | StageError] = {}
    loaded: dict[str, list[Chunk]] = {}
    for doc_id in doc_ids:
        if not store.artifact_path("chunks", doc_id).exists():
            outcomes[doc_id] = StageError(
                "missing_upstream", "document_chunks has not been materialized"
            )
            continue
        loaded[doc_id] = catalog.read_chunks(store, doc_id)
    texts = [chunk.text for chunks in loaded.values() for chunk in chunks]
    slices = []
    for start in range(0, len(texts), EMBED_SLICE):
        before_slice()
        slices.append(embedder.embed(texts[start : start + EMBED_SLICE]))
    vectors = np.concatenate(slices) if slices else embedder.embed([])
    seconds = _timed(started)
    total = max(len(texts), 1)
    offset = 0
    for doc_id, chunks in loaded.items():
        own = vectors[offset : offset + len(chunks)]
        offset += len(chunks)
        path = catalog.write_embeddings(
            store, doc_id, [c.chunk_no for c in chunks], own, embedder.model_name
        )
        norms = np.linalg.norm(own, axis=1) if len(own) else np.ones(1)
        outcomes[doc_id] = StageResult(
            {
                "chunks": len(chunks),
                "model": embedder.model_name,
                "dimension": int(own.shape[1]) if len(own) else embedder.dimension,
                "min_norm": round(float(norms.min()), 4),
                "path": path,
                # The batch is shared, so each document is charged its share of the time.
                "seconds": round(seconds * len(chunks) / total, 3),
                "batch_documents": len(loaded),
                "batch_seconds": seconds,
            }
        )
    return outcomes


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
            item: IndexInput | tuple[str, StageError] = _index_input(store, doc_id)
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


def _index_input(store: DocumentStore, doc_id: str) -> IndexInput:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    if record is None or not store.artifact_path("embeddings", doc_id).exists():
        raise StageError("missing_upstream", "chunk_embeddings has not been materialized")
    chunks = {c.chunk_no: c for c in catalog.read_chunks(store, doc_id)}
    chunk_nos, vectors, model = catalog.read_embeddings(store, doc_id)
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
    live = {doc.id: doc for doc in store.registry.documents([i.doc_id for i in group]) if doc.live}
    homes = {c.name: c for c in store.registry.collections({d.collection for d in live.values()})}
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
