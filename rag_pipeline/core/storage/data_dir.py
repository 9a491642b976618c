"""The document store: where each document's bytes and artifacts live, keyed by id, and the
registry that holds each document's life and status.

Files here are immutable per document and written atomically (temporary file, then rename), so
readers in other processes see the old file or the new one, never half of one.
"""

import hashlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag_pipeline.core.documents.metadata import SIDECAR_SUFFIX
from rag_pipeline.core.registry import Document, Registry, default_url
from rag_pipeline.core.registry.model import DEFAULT_COLLECTION
from rag_pipeline.core.storage import nofollow

# Parquet artifacts, one file per document in each folder; the catalog globs over them.
# `lexical` holds the published copy of `terms` that lexical search reads; it comes first so a
# deleted document leaves lexical search before anything else goes. `indexed_chunks` holds the
# chunks the index has vectors for while a reprocess writes new ones, until those are indexed.
# `pending_embeddings` holds a model switch's vectors for its new generation until the swap.
ARTIFACT_KINDS = (
    "lexical",
    "indexed_chunks",
    "documents",
    "text",
    "chunks",
    "terms",
    "embeddings",
    "pending_embeddings",
)

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


def document_id(filename: str, sha256: str, collection: str = DEFAULT_COLLECTION) -> str:
    """The partition key: readable from the name, and never reused for different content.

    Outside `default` it starts with the collection (`acme--report-<hash>`): the same file in
    two collections is two documents, and neither owner learns of the other's."""
    own = f"{slugify(filename)}-{sha256[:_HASH_CHARS]}"
    return own if collection == DEFAULT_COLLECTION else f"{collection}--{own}"


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


def atomic_link(source: Path, target: Path) -> None:
    """Put `source` at `target` atomically: a hard link (a copy across file systems)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            tmp.write_bytes(source.read_bytes())


_REGISTRIES: dict[str, Registry] = {}
_REGISTRIES_LOCK = threading.Lock()


def open_registry(url: str) -> Registry:
    """One registry (and connection pool) per database and process."""
    with _REGISTRIES_LOCK:
        if url not in _REGISTRIES:
            _REGISTRIES[url] = Registry(url)
        return _REGISTRIES[url]


class DocumentStore:
    """Paths under RAG_DATA_DIR, and the registry. Only this class knows the layout."""

    def __init__(self, data_dir: Path | str, registry_url: str | None = None) -> None:
        self.root = Path(data_dir).resolve()
        self.registry_url = registry_url or default_url(self.root)

    @property
    def registry(self) -> Registry:
        return open_registry(self.registry_url)

    @property
    def registry_path(self) -> Path | None:
        """The registry's file when it is SQLite under the data dir (backups copy it)."""
        return self.root / "registry.db" if self.registry_url == default_url(self.root) else None

    @property
    def incoming_dir(self) -> Path:
        return self.root / "incoming"

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    def landing_folder(self, collection: str) -> Path:
        """Where files for a collection are dropped: the landing zone itself for `default`."""
        return (
            self.landing_dir if collection == DEFAULT_COLLECTION else self.landing_dir / collection
        )

    def state_paths(self) -> dict[str, Path]:
        """Every store under RAG_DATA_DIR that holds state, by name: what a backup must hold.

        Not the landing zone, which is work in progress owned by whoever drops files there, nor
        the vector index, which is derived: the catalog holds every chunk's embedding. The
        registry is here when it is SQLite under the data dir; in PostgreSQL it is backed up
        with that database.
        """
        paths = {"raw": self.raw_dir, "incoming": self.incoming_dir, "catalog": self.catalog_dir}
        if self.registry_path is not None:
            paths["registry"] = self.registry_path
        return paths

    def raw_path(self, doc_id: str) -> Path:
        return self.raw_dir / doc_id

    def artifact_path(self, kind: str, doc_id: str) -> Path:
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        return self.catalog_dir / kind / f"{doc_id}.parquet"

    def read_source(self, doc_id: str) -> Document | None:
        """The live document with this id: registered, and neither deleted nor rejected (its
        stages unread)."""
        return self.registry.reads.get_live_row(doc_id)

    def artifact_ids(self, kind: str) -> list[str]:
        """The documents that have an artifact of this kind, in id order."""
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}")
        return sorted(p.stem for p in (self.catalog_dir / kind).glob("*.parquet"))

    def keep_incoming(self, doc_id: str, name: str, data: bytes) -> Path:
        """A copy of registered bytes that `raw_document` takes from; atomic, so a crash
        leaves the old copy or the new one (and cleanup removes a copy nobody registered)."""
        copy = self.incoming_dir / doc_id / name
        atomic_write_bytes(copy, data)
        return copy

    def remove_incoming(self, doc_id: str) -> None:
        shutil.rmtree(self.incoming_dir / doc_id, ignore_errors=True)

    def keep_raw(self, record: Document) -> tuple[bytes, Path]:
        """Move the registered bytes into the raw store (idempotent) and return them."""
        target = self.raw_path(record.id)
        if target.exists():
            return target.read_bytes(), target
        source = Path(record.source_path or "")
        if source.is_relative_to(self.landing_dir):
            # Strangers write there: a file swapped for a symlink is never followed.
            data = nofollow.read_file(self.landing_dir, str(source.relative_to(self.landing_dir)))
        else:
            data = source.read_bytes()
        atomic_write_bytes(target, data)
        if source.is_relative_to(self.incoming_dir):
            shutil.rmtree(source.parent, ignore_errors=True)
        return data, target

    def remove_files(self, record: Document) -> None:
        """Remove every file the store holds for a document (vectors are the index's job)."""
        # A file still waiting in the landing zone would otherwise be taken again.
        if record.landing_path and record.source_path:
            waiting = self.landing_dir / record.landing_path
            inside = waiting.parent.resolve().is_relative_to(self.landing_dir.resolve())
            if Path(record.source_path) == waiting and inside:
                waiting.unlink(missing_ok=True)
                waiting.with_name(waiting.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
        for kind in ARTIFACT_KINDS:
            self.artifact_path(kind, record.id).unlink(missing_ok=True)
        self.raw_path(record.id).unlink(missing_ok=True)
        self.remove_incoming(record.id)
