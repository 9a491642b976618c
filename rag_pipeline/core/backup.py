"""Backups that restore: one tar.gz with the stores and a manifest of every file's sha256.

Consistency: SQLite files (Chroma's, and the Dagster instance's on one machine) are copied with
SQLite's online backup API, never as raw bytes. The Dagster storage is copied first and the data
second, so the data is never older than the instance that describes it; the caller holds the
index-write pool while the data is copied, so no index write lands halfway.
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

MANIFEST = "manifest.json"
FORMAT = 1
# What of RAG_DATA_DIR is state. landing/ is not: it is work in progress owned by others.
DATA_PARTS = ("raw", "incoming", "catalog", "chroma")
# The document registry when it is SQLite under the data dir (PostgreSQL is backed up with it).
DATA_FILES = ("registry.db",)
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_PREFIX = "backup-"


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
    for path in sorted(root.rglob("*")):
        # Journals belong to the live database; the backup API already folded them in.
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            yield path


def copy_tree(source: Path, target: Path, skip: Callable[[Path], bool] = lambda p: False) -> int:
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


def create_backup(
    *,
    data_dir: Path,
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
        with pause_index_writes():
            for name in DATA_FILES:
                if (data_dir / name).exists():
                    _copy(data_dir / name, staging / "data" / name)
            for part in DATA_PARTS:
                copy_tree(data_dir / part, staging / "data" / part, skip=_temporary)
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "instance_storage": "postgres" if postgres_dump else "sqlite",
            **facts,
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
        partial = target.with_name(f".{target.name}.tmp")
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


def restore_backup(archive: Path, data_dir: Path, dagster_home: Path) -> dict[str, Any]:
    """Check the archive against its manifest, then unpack it into empty locations."""
    manifest = read_manifest(archive)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if not _is_empty(data_dir):
        raise BackupError(f"the target data directory is not empty: {data_dir}")
    has_instance = any(e["path"].startswith("dagster/") for e in manifest["files"])
    if has_instance and any((dagster_home / d).exists() for d in ("history", "schedules")):
        raise BackupError(f"the target DAGSTER_HOME already holds instance storage: {dagster_home}")
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
