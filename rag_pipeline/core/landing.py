"""The landing zone: files dropped by people or programs, picked up once they are complete.

A file is taken only when it is complete: names of files still being written (`.x`, `*.part`,
`*.tmp`, `*.crdownload`) are skipped, and so is a file whose size or mtime changed since the
last look. What cannot become a document moves to `rejected/` with a JSON record beside it;
what has been taken moves to `processed/` once `raw_document` holds its bytes.
"""

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rag_pipeline.core.extract import ExtractionError, accept
from rag_pipeline.core.store import (
    DocumentStore,
    SourceRecord,
    atomic_write_bytes,
    document_id,
    safe_filename,
    sha256_bytes,
)

IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
PROCESSED, REJECTED = "processed", "rejected"
# A file first seen with an mtime at least this old is complete: writers that are still
# writing touch mtime continuously.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Rejection:
    filename: str
    landing_path: str
    code: str
    message: str
    rejected_at: float
    document_id: str | None = None


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


def move_to(store: DocumentStore, relpath: str, folder: str) -> Path | None:
    """Move a landing file under processed/ or rejected/, keeping its relative path."""
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


def reject(
    store: DocumentStore, relpath: str, code: str, message: str, data: bytes | None = None
) -> Rejection:
    name = safe_filename(Path(relpath).name)
    record = Rejection(
        filename=Path(relpath).name,
        landing_path=relpath,
        code=code,
        message=message,
        rejected_at=time.time(),
        document_id=document_id(name, sha256_bytes(data)) if data is not None else None,
    )
    target = move_to(store, relpath, REJECTED)
    if target is not None:
        atomic_write_bytes(
            target.with_name(target.name + ".json"), json.dumps(asdict(record), indent=2).encode()
        )
    return record


def rejections(store: DocumentStore) -> list[Rejection]:
    folder = store.landing_dir / REJECTED
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.rglob("*.json")):
        try:
            records.append(Rejection(**json.loads(path.read_bytes())))
        except (ValueError, TypeError):
            continue  # not one of ours: a rejected upload may itself be JSON
    return records


@dataclass(frozen=True)
class Taken:
    """The outcome of looking at one ready landing file.

    `action` is "new" (registered: add its partition), "in_flight" (already registered and
    waiting for its run), "duplicate" (these bytes under this name are a document already),
    "rejected", or "gone" (removed before we read it).
    """

    relpath: str
    action: str
    record: SourceRecord | None = None
    rejection: Rejection | None = None


def take(store: DocumentStore, relpath: str, has_partition: Callable[[str], bool]) -> Taken:
    """Register a landing file as a document, or say why not."""
    path = store.landing_dir / relpath
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Taken(relpath, "gone")
    except OSError as exc:
        return Taken(relpath, "rejected", rejection=reject(store, relpath, "unreadable", str(exc)))
    try:
        accept(data, path.name)
    except ExtractionError as exc:
        rejection = reject(store, relpath, exc.code, exc.message, data)
        return Taken(relpath, "rejected", rejection=rejection)
    doc_id = document_id(safe_filename(path.name), sha256_bytes(data))
    if has_partition(doc_id):
        existing = store.read_source(doc_id)
        waiting = existing is not None and not store.raw_path(doc_id).exists()
        if waiting and existing is not None and Path(existing.source_path) == path:
            return Taken(relpath, "in_flight", existing)
        move_to(store, relpath, PROCESSED)
        return Taken(relpath, "duplicate", existing)
    with _uploads_locked(store):
        if not path.exists():
            return Taken(relpath, "gone")  # withdrawn by a delete since we read it
        upload = read_upload(store, doc_id)
        record = store.register_landing(
            data,
            relpath,
            chunk_size=upload.chunk_size if upload else None,
            chunk_overlap=upload.chunk_overlap if upload else None,
            supersedes=upload.supersedes if upload else None,
        )
        if upload is not None:
            _upload_path(store, doc_id).unlink(missing_ok=True)
            _sha256_path(store, record.sha256).unlink(missing_ok=True)
    return Taken(relpath, "new", record)


@contextmanager
def _uploads_locked(store: DocumentStore) -> Iterator[None]:
    """Registering an upload (the sensor, in the daemon) and withdrawing it (a delete, in the
    API) exclude each other: otherwise a delete answered 204 could find nothing registered yet
    while the sensor registers the file a moment later, and the document would live on."""
    store.root.mkdir(parents=True, exist_ok=True)
    with (store.root / ".uploads.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Uploads carry options the file itself cannot: they wait in a hidden folder of the landing
# zone (which the scan skips) until the sensor registers the file they belong to.
UPLOADS = ".uploads"


@dataclass(frozen=True)
class Upload:
    document_id: str
    filename: str
    landing_path: str
    uploaded_at: float
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    supersedes: str | None = None
    sha256: str | None = None


def _upload_path(store: DocumentStore, doc_id: str) -> Path:
    return store.landing_dir / UPLOADS / f"{doc_id}.json"


def _sha256_path(store: DocumentStore, digest: str) -> Path:
    return store.landing_dir / UPLOADS / f"{digest}.sha256"


def pending_with_sha256(store: DocumentStore, digest: str) -> str | None:
    """The upload still waiting for the sensor that holds exactly these bytes, whatever its name:
    until the sensor registers it, `DocumentStore.find_by_sha256` cannot know it."""
    try:
        doc_id = _sha256_path(store, digest).read_text().strip()
    except FileNotFoundError:
        return None
    return doc_id if pending_upload(store, doc_id) is not None else None


def read_upload(store: DocumentStore, doc_id: str) -> Upload | None:
    try:
        return Upload(**json.loads(_upload_path(store, doc_id).read_bytes()))
    except FileNotFoundError:
        return None


def pending_upload(store: DocumentStore, doc_id: str) -> Upload | None:
    """An upload waiting for the sensor: its record and its file both in the landing zone.

    `deliver` writes the record first and the file last; an API killed in between leaves a
    record without a file, which is no upload (the client never got its 2xx; cleanup removes
    the record later), and must not make the client's retry a "duplicate" of nothing.
    """
    upload = read_upload(store, doc_id)
    if upload is None or not (store.landing_dir / upload.landing_path).exists():
        return None
    return upload


def deliver(
    store: DocumentStore,
    data: bytes,
    filename: str,
    *,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    supersedes: str | None = None,
) -> Upload:
    """Put an uploaded file into the landing zone for the sensor, with its options beside it.

    Each upload gets its own folder, so two uploads of one name never overwrite each other;
    the options are written first and the file renamed into place last, so the sensor never
    sees the file without them.
    """
    name = safe_filename(filename)
    digest = sha256_bytes(data)
    doc_id = document_id(name, digest)
    relpath = f"api/{doc_id}/{name}"
    upload = Upload(
        document_id=doc_id,
        filename=name,
        landing_path=relpath,
        uploaded_at=time.time(),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        supersedes=supersedes,
        sha256=digest,
    )
    atomic_write_bytes(_upload_path(store, doc_id), json.dumps(asdict(upload)).encode())
    atomic_write_bytes(_sha256_path(store, digest), doc_id.encode())
    atomic_write_bytes(store.landing_dir / relpath, data)
    return upload


def cancel_upload(store: DocumentStore, doc_id: str) -> bool:
    """Withdraw an upload the sensor has not taken yet; False if it already has."""
    with _uploads_locked(store):
        upload = read_upload(store, doc_id)
        if upload is None:
            return False
        (store.landing_dir / upload.landing_path).unlink(missing_ok=True)
        _upload_path(store, doc_id).unlink(missing_ok=True)
        if upload.sha256:
            _sha256_path(store, upload.sha256).unlink(missing_ok=True)
    return True


def forget_rejection(store: DocumentStore, doc_id: str) -> int:
    """Remove rejected files (and their records) that would have become this document."""
    removed = 0
    for record_path in (store.landing_dir / REJECTED).rglob("*.json"):
        try:
            record = Rejection(**json.loads(record_path.read_bytes()))
        except (ValueError, TypeError):
            continue
        if record.document_id == doc_id:
            record_path.with_name(record_path.name[: -len(".json")]).unlink(missing_ok=True)
            record_path.unlink(missing_ok=True)
            removed += 1
    return removed
