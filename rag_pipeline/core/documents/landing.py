"""The landing zone: files dropped by people or programs, picked up once they are complete.

A file is taken only when it is complete: names of files still being written (`.x`, `*.part`,
`*.tmp`, `*.crdownload`) are skipped, and so is a file whose size or mtime changed since the
last look. What cannot become a document moves to `rejected/` (the registry records why); what
has been taken moves to `processed/` once `raw_document` holds its bytes. Registering a file
is the documents service's job.

Collections: a file directly in the landing zone goes to `default`; a file anywhere under
`<name>/` goes to collection `<name>`. A folder that names no collection is not a way in: its
files are rejected (`unknown_collection`). A file's metadata may wait beside it as
`<file>.meta.json`, which moves with it.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rag_pipeline.core.documents.metadata import SIDECAR_SUFFIX
from rag_pipeline.core.registry import DEFAULT_COLLECTION
from rag_pipeline.core.storage.data_dir import DocumentStore

IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
PROCESSED, REJECTED = "processed", "rejected"
# A file first seen with an mtime at least this old is complete: writers that are still
# writing touch mtime continuously.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


def scan(landing: Path) -> dict[str, FileState]:
    """Candidate files under the landing zone, by path relative to it."""
    found: dict[str, FileState] = {}
    if not landing.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(landing):
        rel_dir = Path(dirpath).relative_to(landing)
        # Hidden folders are somebody's work in progress; processed/ and rejected/ are ours.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not (rel_dir == Path(".") and d in (PROCESSED, REJECTED))
        )
        for name in sorted(filenames):
            if name.startswith(".") or name.lower().endswith(IN_PROGRESS_SUFFIXES):
                continue
            if name.lower().endswith(SIDECAR_SUFFIX):
                continue  # metadata of the file beside it, read when that file is taken
            path = Path(dirpath) / name
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_file() or path.is_symlink():
                continue
            found[str(rel_dir / name)] = FileState(stat.st_size, stat.st_mtime_ns)
    return found


def ready(
    current: dict[str, FileState],
    previous: dict[str, FileState],
    now: float | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> list[str]:
    """Files that stood still since the last look, or that were already old at the first one."""
    now = time.time() if now is None else now
    out = []
    for rel, state in current.items():
        before = previous.get(rel)
        if before is not None:
            if before == state:
                out.append(rel)
        elif now - state.mtime_ns / 1e9 >= settle_seconds:
            out.append(rel)
    return out


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    stem, suffix = target.stem, target.suffix
    for n in range(1, 10_000):
        candidate = target.with_name(f"{stem}.{n}{suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)


def collection_of(relpath: str) -> str:
    """The collection a landing file is for: its top folder, `default` at the top level."""
    parts = Path(relpath).parts
    return parts[0] if len(parts) > 1 else DEFAULT_COLLECTION


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def move_to(store: DocumentStore, relpath: str, folder: str) -> Path | None:
    """Move a landing file, and its metadata sidecar, under processed/ or rejected/, keeping
    their relative path."""
    meta = sidecar(store.landing_dir / relpath)
    if meta.is_file():
        moved = _unique(sidecar(store.landing_dir / folder / relpath))
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(meta, moved)
    source = store.landing_dir / relpath
    target = _unique(store.landing_dir / folder / relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(source, target)
    except FileNotFoundError:
        return None
    # Cleanup's grace period counts from the move, not from when the file was written.
    os.utime(target)
    return target


def reject(store: DocumentStore, relpath: str) -> Path | None:
    """Move a file that cannot become a document out of the way; the registry says why."""
    return move_to(store, relpath, REJECTED)
