"""What the blocking and the async client share when they follow a stream or a folder: the
deadline, reconnection and progress bookkeeping (each client does only its own I/O)."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rag_client.errors import ConnectionFailed, IngestFailed, RagError, WaitTimeout
from rag_client.models import TERMINAL, Document, DocumentStatus, UploadedDocument
from rag_client.retry import Retry

# Temporary names a tool writes before it renames a finished file.
_UNFINISHED = (".part", ".tmp", ".crdownload")


class Follow:
    """One events stream followed to its end: reconnects after transport errors (the first
    event of a new connection is the document as it is now) and enforces an overall
    deadline, if any."""

    def __init__(self, doc_id: str, timeout: float | None, retry: Retry, read_timeout: float):
        self.path = f"/documents/{doc_id}/events"
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.retry = retry
        self.read_timeout = read_timeout
        self.failures = 0
        self.last: Document | None = None

    def http_timeout(self) -> httpx.Timeout:
        """A read may not outlast the deadline; keep-alives arrive well within the default."""
        remaining = self.read_timeout if self.deadline is None else self.remaining()
        return httpx.Timeout(self.read_timeout, read=max(0.1, min(self.read_timeout, remaining)))

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def seen(self, doc: Document) -> None:
        self.last = doc
        self.failures = 0

    def check_deadline(self) -> None:
        if self.remaining() <= 0:
            status = self.last.status if self.last else "unknown"
            raise WaitTimeout(
                f"still {status} after {self.timeout} s", code="timeout", detail=self.last
            )

    def done(self) -> bool:
        """Whether the stream ended for good: the server closes it at a terminal status."""
        return self.last is None or self.last.status in TERMINAL

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before reconnecting; raises when it is time to give up."""
        self.check_deadline()
        self.failures += 1
        wait = self.retry.after(self.failures, "GET", exc)
        if wait is None:
            raise ConnectionFailed(f"{self.path}: {exc!r}", code="connection_failed") from exc
        return min(wait, self.remaining())


def indexed(last: Document | None, doc_id: str) -> Document:
    """The document a wait ended with, if it is indexed; otherwise why not, as an exception."""
    if last is None:
        raise RagError(f"{doc_id}: the events stream ended before any status", code="no_status")
    if last.status != DocumentStatus.indexed:
        raise IngestFailed(last)
    return last


def folder_files(folder: str | Path, pattern: str = "**/*") -> list[Path]:
    """The complete files under `folder` matching `pattern`, in name order: hidden files
    and unfinished downloads are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(root)
    return sorted(
        path
        for path in root.glob(pattern)
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and not path.name.endswith(_UNFINISHED)
    )


# Refusals of one file (empty, unsupported, too large, invalid): the folder upload goes on.
REFUSED_ONE_FILE = (415, 413, 422)


@dataclass(frozen=True)
class UploadProgress:
    """One file of a folder upload done: accepted (`document`) or refused (`error`)."""

    done: int
    total: int
    path: Path
    document: UploadedDocument | None = None
    error: RagError | None = None


@dataclass
class FolderUpload:
    """What a folder upload did: the documents accepted, and the files refused and why."""

    documents: list[UploadedDocument] = field(default_factory=list)
    refused: list[tuple[Path, RagError]] = field(default_factory=list)

    def record(
        self,
        path: Path,
        total: int,
        outcome: UploadedDocument | RagError,
        on_progress: Callable[[UploadProgress], object] | None,
    ) -> None:
        if isinstance(outcome, RagError):
            if outcome.status not in REFUSED_ONE_FILE:
                raise outcome
            self.refused.append((path, outcome))
            progress = UploadProgress(self.count, total, path, error=outcome)
        else:
            self.documents.append(outcome)
            progress = UploadProgress(self.count, total, path, document=outcome)
        if on_progress is not None:
            on_progress(progress)

    @property
    def count(self) -> int:
        return len(self.documents) + len(self.refused)
