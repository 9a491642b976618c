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

The zone never leaves itself: whoever drops files may also drop symlinks, so files and
sidecars are read through `nofollow` (a symlinked file is rejected, `symlink`), files move
between folders by descriptor, and a symlinked `processed/` or `rejected/` is refused
(`LandingZoneError`). The landing folder itself belongs to the service: it may be a symlink,
and its target is then the zone.
"""

import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

from rag_pipeline.core.documents.metadata import SIDECAR_SUFFIX
from rag_pipeline.core.registry import DEFAULT_COLLECTION
from rag_pipeline.core.storage import nofollow
from rag_pipeline.core.storage.data_dir import DocumentStore

IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload")
PROCESSED, REJECTED = "processed", "rejected"
# A file first seen with an mtime at least this old is complete: writers that are still
# writing touch mtime continuously.
SETTLE_SECONDS = 1.0


class LandingZoneError(Exception):
    """processed/ or rejected/ (or a folder below them) leads out of the landing zone: nothing
    is moved there, nor deleted from there, until a person makes it a real folder again."""


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


def scan(landing: Path) -> dict[str, FileState]:
    """Candidate files under the landing zone, by path relative to it."""
    found: dict[str, FileState] = {}
    if not landing.is_dir():
        return found
    # os.walk never enters a symlinked folder.
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
            try:
                state = (Path(dirpath) / name).lstat()
            except FileNotFoundError:
                continue
            # A symlink, or anything else that is not a regular file, is a candidate too:
            # taking it rejects it with a code, instead of leaving it there unexplained.
            found[str(rel_dir / name)] = FileState(state.st_size, state.st_mtime_ns)
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


def collection_of(relpath: str) -> str:
    """The collection a landing file is for: its top folder, `default` at the top level."""
    parts = Path(relpath).parts
    return parts[0] if len(parts) > 1 else DEFAULT_COLLECTION


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read(store: DocumentStore, relpath: str, limit: int | None = None) -> bytes:
    """A landing file's bytes; `nofollow.NotRegularFile` if it is a symlink or not a file."""
    return nofollow.read_file(store.landing_dir, relpath, limit)


def read_sidecar(store: DocumentStore, relpath: str, limit: int) -> bytes | None:
    """The bytes of a landing file's sidecar, None if it has none; `NotRegularFile` for a
    symlinked sidecar, whose target is never read, and ValueError past `limit` bytes."""
    try:
        return read(store, relpath + SIDECAR_SUFFIX, limit)
    except FileNotFoundError:
        return None


def check_zone(landing: Path) -> None:
    """Refuse a processed/ or rejected/ that is a symlink, or anything but a folder.

    Refused, not recreated: a link may be an operator's (an archive disk linked in) as well as
    a stranger's, and either way a person should see it and decide."""
    for name in (PROCESSED, REJECTED):
        path = landing / name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            what = (
                f"a symbolic link (to {os.readlink(path)})" if stat.S_ISLNK(mode) else "no folder"
            )
            raise LandingZoneError(
                f"{path} is {what}: files would move, and cleanup would delete, outside the "
                f"landing zone. No file is taken from the landing zone until {name}/ is a real "
                f"folder: remove it (rm {path}); it is made again when needed"
            )


@contextmanager
def _folder(store: DocumentStore, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
    try:
        with nofollow.folder(store.landing_dir, parts, create) as fd:
            yield fd
    except nofollow.NotRegularFile as exc:
        raise LandingZoneError(f"{exc}: nothing is moved through it") from exc


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _unique(name: str, dir_fd: int) -> str:
    if not _exists(name, dir_fd):
        return name
    path = PurePath(name)
    for n in range(1, 10_000):
        candidate = f"{path.stem}.{n}{path.suffix}"
        if not _exists(candidate, dir_fd):
            return candidate
    raise FileExistsError(name)


def _move(name: str, src_fd: int, dst_fd: int) -> str:
    """Move one entry between two folders of the zone without following it (a symlink moves
    as the link itself); returns its new name."""
    target = _unique(name, dst_fd)
    try:
        os.rename(name, target, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy(name, src_fd, target, dst_fd)  # processed/ may be a mount of its own
        os.unlink(name, dir_fd=src_fd)
    return target


def _copy(name: str, src_fd: int, target: str, dst_fd: int) -> None:
    if stat.S_ISLNK(os.stat(name, dir_fd=src_fd, follow_symlinks=False).st_mode):
        os.symlink(os.readlink(name, dir_fd=src_fd), target, dir_fd=dst_fd)
        return
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd)
    dst_flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    dst = os.open(target, dst_flags, 0o644, dir_fd=dst_fd)
    with os.fdopen(src, "rb") as fin, os.fdopen(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)


def move_to(store: DocumentStore, relpath: str, folder: str) -> Path | None:
    """Move a landing file, and its metadata sidecar, under processed/ or rejected/, keeping
    their relative path; LandingZoneError where that would leave the landing zone."""
    check_zone(store.landing_dir)
    rel = PurePath(relpath)
    with (
        _folder(store, rel.parent.parts) as src_fd,
        _folder(store, (folder, *rel.parent.parts), create=True) as dst_fd,
    ):
        meta = rel.name + SIDECAR_SUFFIX
        if _exists(meta, src_fd):
            _move(meta, src_fd, dst_fd)
        try:
            moved = _move(rel.name, src_fd, dst_fd)
        except FileNotFoundError:
            return None
        # Cleanup's grace period counts from the move, not from when the file was written.
        os.utime(moved, dir_fd=dst_fd, follow_symlinks=False)
    return store.landing_dir / folder / rel.parent / moved


def reject(store: DocumentStore, relpath: str) -> Path | None:
    """Move a file that cannot become a document out of the way; the registry says why."""
    return move_to(store, relpath, REJECTED)


def remove_folder(store: DocumentStore, relpath: str) -> None:
    """Remove a folder of the landing zone and all it holds; a symlinked folder, or one below
    a symlink, loses its link only."""
    path = store.landing_dir / relpath
    zone = store.landing_dir.resolve()
    if path.is_symlink():
        path.unlink()
    elif path.is_dir() and path.resolve().parent.is_relative_to(zone):
        # rmtree removes a symlink below the folder it is given, never what it points at.
        shutil.rmtree(path, ignore_errors=True)
