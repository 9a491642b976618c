"""The five stages of ingestion as plain functions, one document (or one batch) at a time.

Each stage reads the previous stage's artifact from the store, so any subset of stages can be
re-run. A document that cannot go on raises `StageError` with a machine-readable code.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.core.documents import landing
from rag_pipeline.core.retrieval import lexical
from rag_pipeline.core.stages.chunking import (
    PAGE_SEPARATOR,
    Chunk,
    ChunkingError,
    chunk_pages,
    load_tokenizer,
)
from rag_pipeline.core.stages.embedders import Embedder, EmbeddingError
from rag_pipeline.core.stages.extract import (
    DEFAULT_LIMITS,
    DEFAULT_OCR,
    LOW_CONFIDENCE,
    ExtractionError,
    ExtractionLimits,
    OcrOptions,
    OcrPages,
    extract_document,
    garbled_share,
    sniff_media_type,
)
from rag_pipeline.core.stages.extract.sniff import MEDIA_PPTX, MEDIA_XLSX
from rag_pipeline.core.storage import catalog
from rag_pipeline.core.storage.data_dir import DocumentStore, sha256_bytes
from rag_pipeline.core.storage.nofollow import NotRegularFile


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


def elapsed_since(started: float) -> float:
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
    except NotRegularFile as exc:
        raise StageError("symlink" if exc.symlink else "not_a_regular_file", str(exc)) from exc
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
            "seconds": elapsed_since(started),
        }
    )


def _retire_landing_copy(store: DocumentStore, relpath: str, source: Path, digest: str) -> None:
    """The raw store holds the bytes now: move the landing file on to processed/."""
    landed = store.landing_dir / relpath
    try:
        if landed != source or sha256_bytes(landing.read(store, relpath)) != digest:
            return  # replaced at the same path since: that file is a new version
        landing.move_to(store, relpath, landing.PROCESSED)
    except (FileNotFoundError, NotRegularFile):
        return  # replaced by a symlink since: the sensor rejects it
    except landing.LandingZoneError:
        return  # the sensor says why on every tick; the file waits where it is, harmlessly


def document_text(
    store: DocumentStore,
    doc_id: str,
    timeout_s: float,
    ocr: OcrOptions | None = DEFAULT_OCR,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> StageResult:
    started = time.perf_counter()
    record = store.read_source(doc_id)
    raw = store.raw_path(doc_id)
    if record is None or not raw.exists():
        raise StageError("missing_upstream", "raw_document has not been materialized")
    data = raw.read_bytes()
    try:
        extracted = extract_document(
            data, record.filename or doc_id, timeout_s=timeout_s, ocr=ocr, limits=limits
        )
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
            "seconds": elapsed_since(started),
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
            "seconds": elapsed_since(started),
        }
    )


EMBED_SLICE = 512


def chunk_embeddings(
    store: DocumentStore,
    doc_ids: Sequence[str],
    embedder: Embedder,
    before_slice: Callable[[], None] = lambda: None,
    kind: str = "embeddings",
) -> dict[str, StageResult | StageError]:
    """Embed several documents in shared batches: the model sees chunks, not documents.

    The chunks go in slices, with `before_slice` called ahead of each, so a long embedding can
    adapt (for instance its thread count) to what else runs on the machine meanwhile. `kind`
    is the artifact written (`pending_embeddings` for a model switch's new generation).
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
    try:
        for start in range(0, len(texts), EMBED_SLICE):
            before_slice()
            slices.append(embedder.embed_documents(texts[start : start + EMBED_SLICE]))
        vectors = np.concatenate(slices) if slices else embedder.embed_documents([])
    except EmbeddingError as exc:
        # The batch shares the failure: no document of it gets a vector.
        return outcomes | {doc_id: StageError(exc.code, exc.message) for doc_id in loaded}
    seconds = elapsed_since(started)
    total = max(len(texts), 1)
    offset = 0
    for doc_id, chunks in loaded.items():
        own = vectors[offset : offset + len(chunks)]
        offset += len(chunks)
        path = catalog.write_embeddings(
            store, doc_id, [c.chunk_no for c in chunks], own, embedder.model_name, kind
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
