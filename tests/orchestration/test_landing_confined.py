"""The landing zone never leaves itself: symlinks dropped into it are never followed, neither by
the sensor, nor by raw_document moving a file on, nor by cleanup."""

import json
import os
import time
from pathlib import Path

import pytest
from support.landing import Daemon, drop, keys

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.stages import ingest
from rag_pipeline.core.storage import cleanup
from rag_pipeline.core.storage.data_dir import DocumentStore

NOTE = "markdown/haystack_sample.md"
OTHER = "markdown/plumber_README.md"
HOUR = 3600.0


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _old(path: Path, age_s: float = 5) -> Path:
    past = time.time() - age_s
    os.utime(path, (past, past), follow_symlinks=False)
    return path


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder beside the data dir that the service can read and write, holding one small
    JSON file that would be valid metadata."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.json").write_text(json.dumps({"owner": "someone-else", "token": "s3cr3t"}))
    return folder


def test_a_symlinked_sidecar_never_becomes_metadata(
    instance, store: DocumentStore, corpus: Path, outside: Path
) -> None:
    linked = drop(corpus, NOTE, store, name="team-notes.md")
    os.symlink(outside / "secret.json", landing.sidecar(linked))
    # A real sidecar beside another file in the same tick: sidecars are read at all.
    plain = drop(corpus, OTHER, store, name="plain.md")
    landing.sidecar(plain).write_text(json.dumps({"owner": "us"}))

    result = Daemon(instance, store).tick()

    [kept] = keys(result)
    assert store.registry.reads.get(kept).metadata == {"owner": "us"}
    rejected, _ = store.registry.reads.page(DocumentStatus.rejected)
    [doc] = [d for d in rejected if d.filename == "team-notes.md"]
    assert doc.error_code == "invalid_metadata"
    assert "symbolic link" in (doc.error_message or ""), doc.error_message
    assert doc.metadata == {}
    # No row anywhere carries the target's contents.
    every = [*rejected, *store.registry.reads.documents([kept])]
    assert not any("s3cr3t" in json.dumps(d.metadata) for d in every)
    # The link moved with its file, as a link; its target is untouched.
    moved = store.landing_dir / "rejected" / "team-notes.md.meta.json"
    assert moved.is_symlink() and (outside / "secret.json").exists()


def test_a_symlinked_file_is_rejected_and_its_target_never_read(
    instance, store: DocumentStore, outside: Path
) -> None:
    link = store.landing_dir / "secret.md"
    os.symlink(outside / "secret.json", link)
    _old(link)
    # A FIFO would block a plain open for ever, waiting for a writer.
    fifo = store.landing_dir / "pipe.txt"
    os.mkfifo(fifo)
    _old(fifo)

    result = Daemon(instance, store).tick()

    assert keys(result) == []
    rejected, _ = store.registry.reads.page(DocumentStatus.rejected)
    codes = {doc.filename: doc.error_code for doc in rejected}
    assert codes == {"secret.md": "symlink", "pipe.txt": "not_a_regular_file"}
    assert all(doc.sha256 is None for doc in rejected), "no bytes were read"
    assert (store.landing_dir / "rejected" / "secret.md").is_symlink()
    assert (outside / "secret.json").exists()


@pytest.mark.parametrize("folder", [landing.PROCESSED, landing.REJECTED])
def test_a_symlinked_processed_or_rejected_folder_is_refused(
    instance, store: DocumentStore, corpus: Path, outside: Path, folder: str
) -> None:
    os.symlink(outside, store.landing_dir / folder, target_is_directory=True)
    before = _tree(outside)
    dropped = drop(corpus, NOTE, store)
    (store.landing_dir / "empty.txt").write_bytes(b"")  # would be rejected
    _old(store.landing_dir / "empty.txt")
    upload = DocumentsService(store).add((corpus / OTHER).read_bytes(), "upload.md").document

    result = Daemon(instance, store).tick()

    assert result.skip_reason is None, "uploads still flow"
    assert keys(result) == [upload.id], "no landing file is taken"
    assert dropped.exists() and (store.landing_dir / "empty.txt").exists()
    assert _tree(outside) == before, "nothing was written outside the zone"
    assert store.registry.reads.page(DocumentStatus.rejected)[0] == []

    # With nothing to pick up the tick says why it skipped.
    skipped = Daemon(instance, store).tick().skip_reason
    assert skipped is not None and skipped.skip_message is not None
    link = store.landing_dir / folder
    assert skipped.skip_message.startswith(f"landing zone refused: {link} is a symbolic link")


def test_raw_document_never_moves_a_file_out_through_a_symlinked_processed(
    instance, store: DocumentStore, corpus: Path, outside: Path
) -> None:
    dropped = drop(corpus, NOTE, store, name="default/2024/note.md")
    [key] = keys(Daemon(instance, store).tick())
    os.symlink(outside, store.landing_dir / landing.PROCESSED, target_is_directory=True)
    before = _tree(outside)

    result = ingest.raw_document(store, key)

    assert result.metadata["bytes"] == dropped.stat().st_size, "the stage still succeeds"
    assert dropped.exists(), "the file waits where it was"
    assert _tree(outside) == before


def test_cleanup_never_deletes_outside_the_zone(store: DocumentStore, outside: Path) -> None:
    processed = store.landing_dir / landing.PROCESSED
    target = outside / "secret.json"
    # A link to an outside file, an outside folder linked in as a collection's folder, and a
    # link that looks like an interrupted upload: all old enough to go.
    (processed / "team").mkdir(parents=True)
    os.symlink(target, processed / "team" / "linked.txt")
    os.symlink(outside, processed / "elsewhere", target_is_directory=True)
    os.symlink(target, store.landing_dir / ".upload.part")
    (outside / "old.txt").write_text("old")
    for link in (processed / "team" / "linked.txt", processed / "elsewhere"):
        _old(link, 3 * HOUR)
    _old(store.landing_dir / ".upload.part", 3 * HOUR)
    _old(outside / "old.txt", 3 * HOUR)
    before = _tree(outside)

    assert cleanup.processed_files(store, older_than_s=HOUR) == 2, "the links themselves go"
    assert cleanup.partial_files(store, older_than_s=HOUR) == 1
    assert _tree(outside) == before and not any(processed.iterdir())

    # processed/ itself a symlink: refused before anything is deleted.
    processed.rmdir()
    os.symlink(outside, processed, target_is_directory=True)
    for rule in (cleanup.processed_files, cleanup.rejected_files):
        with pytest.raises(landing.LandingZoneError, match="is a symbolic link"):
            rule(store, 0.0)
    assert _tree(outside) == before
