"""Backups that restore: one tar.gz with the stores and a manifest of every file's sha256.

Which stores: the instance's storage, and every store `DocumentStore.state_paths()` names. Not
the vector index: it is derived, since the catalog holds every chunk's embedding, and a remote
Chroma keeps its files where no backup can reach them. A restore rebuilds it from the catalog.

Consistency: SQLite files (the Dagster instance's on one machine) are copied with SQLite's online
backup API, never as raw bytes. The Dagster storage is copied first and the data second, so the
data is never older than the instance that describes it; the caller holds the index-write pool
while the data is copied, so no index write lands halfway.
"""

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rag_pipeline.core.retrieval.vector_index import VectorIndex
from rag_pipeline.core.stages import indexing, ingest
from rag_pipeline.core.storage.data_dir import DocumentStore

MANIFEST = "manifest.json"
# Format 1 archives also held Chroma's files under data/chroma; they restore the same way.
FORMAT = 2
_READABLE_FORMATS = (1, 2)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_PREFIX = "backup-"
# The kind of catalog artifact that says a document is in the index: the vector_index stage
# publishes its terms right after writing its vectors, and a delete removes them first.
INDEXED_MARK = "lexical"


class BackupError(Exception):
    pass


def archive_name(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{_PREFIX}{stamp}.tar.gz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix in _SQLITE_SUFFIXES and _is_sqlite(source):
        with (
            sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src,
            sqlite3.connect(target) as dst,
        ):
            src.backup(dst)
        return
    shutil.copy2(source, target)


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _files(root: Path) -> Iterator[Path]:
    # A store may be one file (a database) or a folder of them.
    for path in [root] if root.is_file() else sorted(root.rglob("*")):
        # Journals belong to the live database; the backup API already folded them in.
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            yield path


def copy_tree(source: Path, target: Path, skip: Callable[[Path], bool] = lambda p: False) -> int:
    """Copy a store, a folder or one file, to `target`; returns how many files it copied."""
    copied = 0
    if not source.exists():
        return copied
    for path in _files(source):
        rel = path.relative_to(source)
        if skip(rel):
            continue
        try:
            _copy(path, target / rel)
        except FileNotFoundError:
            continue  # removed while we walked: a deleted document, not an error
        copied += 1
    return copied


def indexed_vectors(store: DocumentStore) -> dict[str, int]:
    """The documents in the index and how many vectors each has, read from the catalog alone."""
    counts = {}
    for doc_id in store.artifact_ids(INDEXED_MARK):
        embeddings = store.artifact_path("embeddings", doc_id)
        counts[doc_id] = pq.read_metadata(embeddings).num_rows if embeddings.exists() else 0
    return counts


def create_backup(
    *,
    store: DocumentStore,
    dagster_home: Path,
    backup_dir: Path,
    pause_index_writes: Callable[[], Any],
    postgres_dump: Callable[[Path], None] | None,
    facts: dict[str, Any],
) -> tuple[Path, dict[str, Any]]:
    """Write backup-<UTC timestamp>.tar.gz under backup_dir; returns its path and manifest."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=backup_dir, prefix=".staging-") as tmp:
        staging = Path(tmp)
        instance_dir = staging / "dagster"
        if postgres_dump is not None:
            instance_dir.mkdir(parents=True)
            postgres_dump(instance_dir / "postgres.sql")
        else:
            copy_tree(dagster_home, instance_dir, skip=_not_instance_state)
        copied = DocumentStore(staging / "data")
        stores: dict[str, int] = {}
        with pause_index_writes():
            for name, path in store.state_paths().items():
                target = copied.root / path.relative_to(store.root)
                stores[name] = copy_tree(path, target, skip=_temporary)
        vectors = indexed_vectors(copied)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "instance_storage": "postgres" if postgres_dump else "sqlite",
            **facts,
            "stores": stores,
            "vector_index": {
                "archived": False,
                "rebuilt_from": "catalog",
                "documents": len(vectors),
                "vectors": sum(vectors.values()),
            },
            "files": [
                {
                    "path": str(p.relative_to(staging)),
                    "sha256": _sha256(p),
                    "bytes": p.stat().st_size,
                }
                for p in _files(staging)
            ],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        target = backup_dir / archive_name()
        # Written inside the staging folder, so a failed write leaves nothing behind.
        partial = staging / target.name
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(staging / MANIFEST, arcname=MANIFEST)
            for entry in manifest["files"]:
                tar.add(staging / entry["path"], arcname=entry["path"])
        os.replace(partial, target)
    return target, manifest


def _temporary(rel: Path) -> bool:
    return rel.name.startswith(".") and rel.name.endswith(".tmp")


def _not_instance_state(rel: Path) -> bool:
    # Instance state is the SQLite storage; logs and compute logs can be regenerated or lost.
    return rel.parts[0] not in ("history", "schedules") and rel.name != "dagster.yaml"


def prune(backup_dir: Path, retention_days: float, keep: Path) -> list[Path]:
    """Delete archives older than the retention; called only after a backup succeeded."""
    cutoff = time.time() - retention_days * 86400
    removed = []
    for path in sorted(backup_dir.glob(f"{_PREFIX}*.tar.gz")):
        if path != keep and path.stat().st_mtime < cutoff:
            path.unlink()
            removed.append(path)
    return removed


def _is_empty(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.load(io.TextIOWrapper(member, "utf-8"))
            return manifest
    except KeyError as exc:
        raise BackupError(f"{archive} is not a backup: it has no {MANIFEST}") from exc
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise BackupError(f"{archive} is corrupt or unreadable: {exc}") from exc


def check_targets(manifest: dict[str, Any], data_dir: Path, dagster_home: Path) -> None:
    """Refuse a restore that would mix the archive with what the targets already hold."""
    if manifest.get("format") not in _READABLE_FORMATS:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if not _is_empty(data_dir):
        raise BackupError(f"the target data directory is not empty: {data_dir}")
    restored = {
        e["path"].split("/")[1] for e in manifest["files"] if e["path"].startswith("dagster/")
    }
    if not restored:
        return
    # The target's own dagster.yaml is kept; any instance storage there would be mixed or lost.
    clashes = sorted(
        name
        for name in (restored - {"dagster.yaml"}) | {"history", "schedules", "postgres.sql"}
        if (dagster_home / name).exists()
    )
    if clashes:
        raise BackupError(
            f"the target DAGSTER_HOME already holds instance storage ({', '.join(clashes)}): "
            f"{dagster_home}"
        )


def check_index_empty(index: VectorIndex) -> None:
    """Refuse to rebuild vectors into indexes that hold any: the configured collection's, and
    every collection's named after it. A restore into the deployment's own settings would put
    back the vectors of documents deleted since the backup, where search finds them."""
    held = {index.name: index.count()}
    held.update({index.of(suffix).name: index.of(suffix).count() for suffix in index.suffixes()})
    busy = {name: count for name, count in sorted(held.items()) if count}
    if busy:
        listed = ", ".join(f"{name!r} ({count} vectors)" for name, count in busy.items())
        raise BackupError(
            f"the target Chroma collection already holds vectors: {listed}. A restore never "
            "writes into a live index: name an empty one (--collection, --chroma-url), or pass "
            "--force to write into this one anyway"
        )


def restore_backup(archive: Path, data_dir: Path, dagster_home: Path) -> dict[str, Any]:
    """Check the archive against its manifest, then unpack it into empty locations."""
    manifest = read_manifest(archive)
    check_targets(manifest, data_dir, dagster_home)
    expected = {e["path"]: e for e in manifest["files"]}
    with tempfile.TemporaryDirectory(
        dir=data_dir.parent if data_dir.parent.exists() else None
    ) as tmp:
        staging = Path(tmp)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                names = set(tar.getnames()) - {MANIFEST}
                if names != set(expected):
                    missing, extra = set(expected) - names, names - set(expected)
                    raise BackupError(
                        f"the archive does not match its manifest: {len(missing)} missing, "
                        f"{len(extra)} unexpected files"
                    )
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError(f"{archive} is corrupt or unreadable: {exc}") from exc
        for rel, entry in expected.items():
            if _sha256(staging / rel) != entry["sha256"]:
                raise BackupError(
                    f"{rel} does not match its sha256 in the manifest: corrupt archive"
                )
        data_dir.mkdir(parents=True, exist_ok=True)
        if (staging / "data").exists():
            for part in (staging / "data").iterdir():
                shutil.move(part, data_dir / part.name)
        if (staging / "dagster").exists():
            dagster_home.mkdir(parents=True, exist_ok=True)
            for part in (staging / "dagster").iterdir():
                target = dagster_home / part.name
                if part.name == "dagster.yaml" and target.exists():
                    continue  # the target's own configuration wins
                shutil.move(part, target)
    return manifest


def rebuild_vectors(store: DocumentStore, index: VectorIndex) -> tuple[int, dict[str, str]]:
    """Write the vectors of every indexed document into the index, from the catalog.

    The same stage the pipeline runs, so ids and record metadata are the pipeline's own, and
    running it again over vectors that are already there changes nothing. Returns the number
    of vectors written and, per document that could not be rebuilt, the reason. A model
    switch under way keeps going, but from none of its documents written: its generation is
    not rebuilt (retry the switch to write it again).
    """
    for home in store.registry.tenancy.collections():
        if home.pending_generation is not None:
            store.registry.switches.restart(home.name)
    written, skipped = 0, {}
    for group in indexing.index_inputs(store, store.artifact_ids(INDEXED_MARK)):
        outcomes: dict[str, ingest.StageResult | ingest.StageError] = dict(
            item for item in group if not isinstance(item, indexing.IndexInput)
        )
        ready = [item for item in group if isinstance(item, indexing.IndexInput)]
        outcomes.update(indexing.vector_index(store, ready, index))
        for doc_id, outcome in outcomes.items():
            if isinstance(outcome, ingest.StageError):
                skipped[doc_id] = f"[{outcome.code}] {outcome.message}"
            else:
                written += int(outcome.metadata["vectors"])
    return written, skipped
