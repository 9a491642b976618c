"""The document store on disk: where each document's bytes and artifacts live, keyed by id.

Everything here is immutable per document and written atomically (temporary file, then
rename), so readers in other processes see the old file or the new one, never half of one.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Parquet artifacts, one file per document in each folder; the catalog globs over them.
# `lexical` holds the published copy of `terms` that lexical search reads; it comes first so a
# deleted document leaves lexical search before anything else goes.
ARTIFACT_KINDS = ("lexical", "documents", "text", "chunks", "terms", "embeddings")

_MAX_SLUG = 60
_HASH_CHARS = 12


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slugify(filename: str) -> str:
    """A readable, URL- and shell-safe stem: `Annual Report (v2).pdf` -> `annual-report-v2`."""
    stem = Path(filename).stem if "." in filename.strip(".") else filename
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")
    return slug[:_MAX_SLUG].rstrip("-") or "document"


def document_id(filename: str, sha256: str) -> str:
    """The partition key: readable from the name, and never reused for different content."""
    return f"{slugify(filename)}-{sha256[:_HASH_CHARS]}"


def safe_filename(filename: str) -> str:
    """The last path component of a client-supplied name, without control characters."""
    name = filename.replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".")
    if len(name.encode()) > 200:
        suffix = Path(name).suffix[:16]
        name = name.encode()[: 200 - len(suffix.encode())].decode(errors="ignore") + suffix
    return name or "document"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SourceRecord:
    """What registering a document knows before any asset runs: where its bytes are, and options."""

    document_id: str
    filename: str
    sha256: str
    size: int
    source_path: str
    registered_at: float = field(default_factory=time.time)
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    # Set for files taken from the landing zone: where they landed, and the document that the
    # previous file at that path became (this one replaces it once indexed).
    landing_path: str | None = None
    supersedes: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "SourceRecord":
        return cls(**json.loads(data))


class DocumentStore:
    """Paths under RAG_DATA_DIR. Only this class knows the layout."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir).resolve()

    @property
    def incoming_dir(self) -> Path:
        return self.root / "incoming"

    @property
    def sources_dir(self) -> Path:
        return self.root / "sources"

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def tombstones_dir(self) -> Path:
        return self.root / "tombstones"

    def state_paths(self) -> dict[str, Path]:
        """Every store under RAG_DATA_DIR that holds state, by name: what a backup must hold.

        Not the landing zone, which is work in progress owned by whoever drops files there, nor
        the vector index, which is derived: the catalog holds every chunk's embedding.
        """
        return {
            "raw": self.raw_dir,
            "incoming": self.incoming_dir,
            "sources": self.sources_dir,
            "tombstones": self.tombstones_dir,
            "catalog": self.catalog_dir,
        }

    def source_path(self, doc_id: str) -> Path:
        return self.sources_dir / f"{doc_id}.json"

    def raw_path(self, doc_id: str) -> Path:
        return self.raw_dir / doc_id

    def artifact_path(self, kind: str, doc_id: str) -> Path:
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        return self.catalog_dir / kind / f"{doc_id}.parquet"

    def artifact_ids(self, kind: str) -> list[str]:
        """The documents that have an artifact of this kind, in id order."""
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        return sorted(p.stem for p in (self.catalog_dir / kind).glob("*.parquet"))

    def register(
        self,
        data: bytes,
        filename: str,
        *,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
    ) -> SourceRecord:
        """Keep a copy of the bytes and a source record, so `raw_document` can read them later.

        The same bytes under the same name give the same id; registering them again keeps the
        original record (and its registration time) untouched.
        """
        name = safe_filename(filename)
        digest = sha256_bytes(data)
        doc_id = document_id(name, digest)
        existing = self.read_source(doc_id)
        if existing is not None and Path(existing.source_path).exists():
            return existing
        copy = self.incoming_dir / doc_id / name
        atomic_write_bytes(copy, data)
        record = SourceRecord(
            document_id=doc_id,
            filename=name,
            sha256=digest,
            size=len(data),
            source_path=str(copy),
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        self._write_record(record)
        return record

    def register_landing(
        self,
        data: bytes,
        relpath: str,
        *,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        supersedes: str | None = None,
    ) -> SourceRecord:
        """Register a landing-zone file in place; raw_document copies it and moves it on.

        A file at a path where an earlier document landed supersedes that document, unless the
        upload names the document it replaces itself.
        """
        name = safe_filename(Path(relpath).name)
        digest = sha256_bytes(data)
        doc_id = document_id(name, digest)
        previous = supersedes or self.read_source_for_landing(relpath)
        if previous == doc_id or (previous and self.read_source(previous) is None):
            previous = None
        record = SourceRecord(
            document_id=doc_id,
            filename=name,
            sha256=digest,
            size=len(data),
            source_path=str(self.landing_dir / relpath),
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            landing_path=relpath,
            supersedes=previous,
        )
        self._write_record(record)
        atomic_write_bytes(self._path_pointer(relpath), doc_id.encode())
        return record

    def _write_record(self, record: SourceRecord) -> None:
        atomic_write_bytes(self.source_path(record.document_id), record.to_json())
        atomic_write_bytes(self._sha_pointer(record.sha256), record.document_id.encode())
        self.tombstone_path(record.document_id).unlink(missing_ok=True)

    def find_by_sha256(self, digest: str) -> SourceRecord | None:
        """The live document holding exactly these bytes, whatever its name."""
        try:
            doc_id = self._sha_pointer(digest).read_text().strip()
        except FileNotFoundError:
            return None
        record = self.read_source(doc_id)
        return record if record is not None and record.sha256 == digest else None

    def _sha_pointer(self, digest: str) -> Path:
        return self.sources_dir / "by-sha256" / digest

    def read_source_for_landing(self, relpath: str) -> str | None:
        """The document id the file last registered at this landing path became."""
        try:
            return self._path_pointer(relpath).read_text().strip()
        except FileNotFoundError:
            return None

    def _path_pointer(self, relpath: str) -> Path:
        key = hashlib.sha1(relpath.encode(), usedforsecurity=False).hexdigest()
        return self.sources_dir / "by-landing-path" / key

    def read_source(self, doc_id: str) -> SourceRecord | None:
        try:
            return SourceRecord.from_json(self.source_path(doc_id).read_bytes())
        except FileNotFoundError:
            return None

    def keep_raw(self, record: SourceRecord) -> tuple[bytes, Path]:
        """Move the registered bytes into the raw store (idempotent) and return them."""
        target = self.raw_path(record.document_id)
        if target.exists():
            return target.read_bytes(), target
        data = Path(record.source_path).read_bytes()
        atomic_write_bytes(target, data)
        source = Path(record.source_path)
        if source.is_relative_to(self.incoming_dir):
            shutil.rmtree(source.parent, ignore_errors=True)
        return data, target

    def tombstone_path(self, doc_id: str) -> Path:
        return self.tombstones_dir / f"{doc_id}.json"

    def delete_document(self, doc_id: str, reason: str, superseded_by: str | None = None) -> None:
        """Remove every file the store holds for a document (vectors are the index's job).

        A tombstone remembers that the document existed, so its status can say `deleted`.
        """
        record = self.read_source(doc_id)
        tombstone = {
            "document_id": doc_id,
            "filename": record.filename if record else None,
            "deleted_at": time.time(),
            "reason": reason,
            "superseded_by": superseded_by,
        }
        atomic_write_bytes(self.tombstone_path(doc_id), json.dumps(tombstone).encode())
        # A file still waiting in the landing zone would otherwise be taken again.
        if record is not None and record.landing_path:
            waiting = self.landing_dir / record.landing_path
            if Path(record.source_path) == waiting:
                waiting.unlink(missing_ok=True)
        for kind in ARTIFACT_KINDS:
            self.artifact_path(kind, doc_id).unlink(missing_ok=True)
        self.raw_path(doc_id).unlink(missing_ok=True)
        shutil.rmtree(self.incoming_dir / doc_id, ignore_errors=True)
        self.source_path(doc_id).unlink(missing_ok=True)

    def read_tombstone(self, doc_id: str) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self.tombstone_path(doc_id).read_bytes())
        except FileNotFoundError:
            return None
        return loaded
