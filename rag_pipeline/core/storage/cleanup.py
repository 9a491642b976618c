"""Cleanup rules. Each is idempotent: running it twice removes nothing the second time.

A document is live while the registry says so (or, for its vectors, while it has a partition);
anything keyed by a document that is neither is an orphan.
"""

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.storage.data_dir import ARTIFACT_KINDS, DocumentStore


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def _remove(paths: Iterable[Path]) -> int:
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def _prune_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def processed_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Landing copies that raw_document already holds, past their grace period."""
    cutoff = (now or time.time()) - older_than_s
    folder = store.landing_dir / landing.PROCESSED
    removed = _remove(p for p in folder.rglob("*") if p.is_file() and _older(p, cutoff))
    _prune_empty_dirs(folder)
    return removed


def rejected_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Rejected files and their registry rows; returns how many rejections were removed."""
    cutoff = (now or time.time()) - older_than_s
    folder = store.landing_dir / landing.REJECTED
    removed = 0
    for doc_id in store.registry.reads.rejected_before(cutoff):
        removed += int(store.registry.lifecycle.forget(doc_id))
    _remove(p for p in folder.rglob("*") if p.is_file() and _older(p, cutoff))
    _prune_empty_dirs(folder)
    return removed


def partial_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Uploads that never finished, and temporary files left by interrupted atomic writes."""
    cutoff = (now or time.time()) - older_than_s
    stale: list[Path] = []
    for path in store.landing_dir.rglob("*") if store.landing_dir.exists() else []:
        rel = path.relative_to(store.landing_dir)
        if not path.is_file() or rel.parts[0] in (landing.PROCESSED, landing.REJECTED):
            continue
        in_progress = path.name.startswith(".") or path.name.lower().endswith(
            landing.IN_PROGRESS_SUFFIXES
        )
        if in_progress and _older(path, cutoff):
            stale.append(path)
    for part in ("raw", "catalog", "incoming"):
        folder = store.root / part
        if folder.exists():
            stale.extend(p for p in folder.rglob(".*.tmp") if p.is_file() and _older(p, cutoff))
    return _remove(stale)


def orphan_artifacts(store: DocumentStore, is_live: Callable[[str], bool]) -> int:
    paths = [
        p
        for kind in ARTIFACT_KINDS
        for p in (store.catalog_dir / kind).glob("*.parquet")
        if not is_live(p.stem)
    ]
    if store.raw_dir.exists():
        paths.extend(p for p in store.raw_dir.iterdir() if p.is_file() and not is_live(p.name))
    removed = _remove(paths)
    if store.incoming_dir.exists():
        for folder in store.incoming_dir.iterdir():
            if folder.is_dir() and not is_live(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


def orphan_vectors(
    index: VectorIndex, is_live: Callable[[str], bool], suffixes: Iterable[str] = ("",)
) -> int:
    """Vectors of documents that no longer exist, in the indexes of these collections (see
    `Collection.index_suffix`); the caller holds the index-write pool."""
    removed = 0
    for suffix in suffixes:
        own = index.of(suffix)
        stale = [doc for doc in own.document_ids() if not is_live(doc)]
        removed += sum(own.delete_document(doc) for doc in stale)
    return removed


def deleted_collections(
    store: DocumentStore, index: VectorIndex, reason: str
) -> tuple[list[str], list[str]]:
    """What a collection delete that stopped part-way left: its live documents (retired, as
    the delete would have) and the vector indexes of collections that no longer exist
    (dropped). The caller holds the index-write pool, and releases the retired documents'
    partitions. Returns the ids retired and the index suffixes dropped."""
    service = DocumentsService(store)
    retired = [
        doc_id
        for doc_id in store.registry.tenancy.homeless()
        if service.retire(doc_id, index, reason) is not None
    ]
    # Indexes first, rows after: an index is made only for a collection whose row exists, so
    # a collection made meanwhile is among the rows read.
    found = index.suffixes()
    stale = sorted(found - {c.index_suffix for c in store.registry.tenancy.collections()})
    for suffix in stale:
        index.drop(suffix)
    return retired, stale
