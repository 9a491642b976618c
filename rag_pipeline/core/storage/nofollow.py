"""Files under a folder that strangers write into, reached without following a symlink.

Every path is walked from the trusted root one component at a time, each opened relative to
the one before with O_NOFOLLOW, so no symlink anywhere below the root (swapped in at any
moment) leads out of it; the file itself is checked with fstat once open.
"""

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import PurePath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRegularFile(OSError):
    """A path that is a symlink, or anything else that is not a regular file or folder."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path} is {what}")
        self.path = path
        self.what = what

    @property
    def symlink(self) -> bool:
        return self.what.startswith("a symbolic link")


def _what(name: str, dir_fd: int) -> str:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return "not a regular file"
    if stat.S_ISLNK(st.st_mode):
        return f"a symbolic link (to {os.readlink(name, dir_fd=dir_fd)})"
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    return "not a regular file"


@contextmanager
def folder(root: PurePath, parts: Sequence[str], create: bool = False) -> Iterator[int]:
    """A descriptor of the folder `root/parts...`, made if `create`; NotRegularFile if any
    part is a symlink or no folder."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        walked = root
        for part in parts:
            if part in ("", ".", ".."):
                raise NotRegularFile(str(walked / part), "not a plain folder name")
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotRegularFile(str(walked / part), _what(part, fd)) from exc
                raise
            os.close(fd)
            fd, walked = child, walked / part
        yield fd
    finally:
        os.close(fd)


def read_file(root: PurePath, relpath: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file `root/relpath`; NotRegularFile for a symlink or anything
    else, ValueError past `limit` bytes (checked before reading)."""
    rel = PurePath(relpath)
    with folder(root, rel.parent.parts) as dir_fd:
        try:
            fd = os.open(rel.name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise NotRegularFile(str(root / rel), _what(rel.name, dir_fd)) from exc
            raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(str(root / rel), "not a regular file")
        if limit is not None and st.st_size > limit:
            raise ValueError(f"{rel.name} is {st.st_size} bytes; the limit is {limit}")
        if limit is None:
            return fh.read()
        data = fh.read(limit + 1)  # a file that grew since fstat is still bounded
        if len(data) > limit:
            raise ValueError(f"{rel.name} is over the limit of {limit} bytes")
        return data
