"""Cleanup rules. Each is idempotent: running it twice removes nothing the second time.

A document is live while the registry says so (or, for its vectors, while it has a partition);
anything keyed by a document that is neither is an orphan.
"""

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.storage.data_dir import ARTIFACT_KINDS, DocumentStore


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
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


def _zone_files(store: DocumentStore, folder: Path) -> Iterator[Path]:
    """Every entry but folders under `folder` of the landing zone, symlinks as themselves
    (removing one removes the link). Each entry's folder is resolved, and one that resolves
    outside the zone (a folder swapped for a symlink meanwhile) is passed over."""
    zone = store.landing_dir.resolve()
    for dirpath, dirnames, filenames in os.walk(folder):  # never enters a symlinked folder
        if not Path(dirpath).resolve().is_relative_to(zone):
            dirnames.clear()
            continue
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            yield Path(dirpath) / name


def _prune_empty_dirs(root: Path) -> None:
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, _, _ in sorted(os.walk(root), reverse=True):
        folder = Path(dirpath)
        if folder != root and not any(folder.iterdir()):
            folder.rmdir()


def processed_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Landing copies that raw_document already holds, past their grace period;
    LandingZoneError if processed/ or rejected/ leads out of the zone."""
    landing.check_zone(store.landing_dir)
    cutoff = (now or time.time()) - older_than_s
    folder = store.landing_dir / landing.PROCESSED
    removed = _remove(p for p in list(_zone_files(store, folder)) if _older(p, cutoff))
    _prune_empty_dirs(folder)
    return removed


def rejected_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Rejected files and their registry rows; returns how many rejections were removed.
    LandingZoneError, before anything is removed, if processed/ or rejected/ leads out of the
    zone."""
    landing.check_zone(store.landing_dir)
    cutoff = (now or time.time()) - older_than_s
    folder = store.landing_dir / landing.REJECTED
    removed = 0
    for doc_id in store.registry.reads.rejected_before(cutoff):
        removed += int(store.registry.lifecycle.forget(doc_id))
    _remove(p for p in list(_zone_files(store, folder)) if _older(p, cutoff))
    _prune_empty_dirs(folder)
    return removed


def partial_files(store: DocumentStore, older_than_s: float, now: float | None = None) -> int:
    """Uploads that never finished, and temporary files left by interrupted atomic writes."""
    cutoff = (now or time.time()) - older_than_s
    stale: list[Path] = []
    for path in _zone_files(store, store.landing_dir):
        rel = path.relative_to(store.landing_dir)
        if rel.parts[0] in (landing.PROCESSED, landing.REJECTED):
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
    # A model switch's pending generation is kept; an old one a swap left behind is not.
    kept: set[str] = set()
    for c in store.registry.tenancy.collections():
        kept.update(s for s in (c.index_suffix, c.pending_suffix) if s is not None)
    stale = sorted(found - kept)
    for suffix in stale:
        index.drop(suffix)
    return retired, stale
