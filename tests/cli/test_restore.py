"""Restore: an archive back into empty locations, its vectors rebuilt from the catalog."""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from support.backups import CHILD_ENV, run_backup_job, run_restore
from support.env import REPO
from support.runs import add_files, copy_corpus, definitions, materialize

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.search import SearchMode, search
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.stages.embedders import get_embedder
from rag_pipeline.core.storage.backup import BackupError, read_manifest, restore_backup
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

QUERIES = ["Norwich City football club", "haystack pipelines", "extract text from pdf pages"]
DOCS = ["text/uns_norwich-city.txt", "markdown/haystack_sample.md", "markdown/plumber_README.md"]


def _results(chroma_url: str, collection: str, data_dir: Path) -> dict[tuple[str, str], list[Any]]:
    index = VectorIndex(connect(chroma_url), collection)
    store = DocumentStore(data_dir)
    return {
        (mode.value, query): [
            (r.document_id, r.chunk_no, r.score, r.text)
            for r in search(
                query,
                k=5,
                mode=mode,
                embedder=get_embedder("hash-384"),
                index=index,
                lexicon=LexicalIndex(store),
                catalog=Catalog(store),
            )
        ]
        for mode in SearchMode
        for query in QUERIES
    }


def _records(chroma_url: str, collection: str) -> dict[str, tuple[Any, list[float]]]:
    """Every vector of the collection with its id and record metadata."""
    found = connect(chroma_url).get_collection(collection).get(include=["metadatas", "embeddings"])
    return {
        id_: (meta, [float(x) for x in vector])
        for id_, meta, vector in zip(
            found["ids"], found["metadatas"], found["embeddings"], strict=True
        )
    }


def test_a_restore_rebuilds_the_vectors_in_an_empty_chroma_with_identical_search_results(
    instance, rag_env, backups, fresh_chroma, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in DOCS])
    assert materialize(instance, ids).success
    url, collection = rag_env["RAG_CHROMA_URL"], rag_env["RAG_CHROMA_COLLECTION"]
    before = _results(url, collection, Path(rag_env["RAG_DATA_DIR"]))
    assert all(before.values()), before
    records = _records(url, collection)

    done = run_backup_job()
    assert done.returncode == 0, done.stderr[-3000:]
    [archive] = list(backups.glob("backup-*.tar.gz"))
    manifest = read_manifest(archive)
    # The archive says what it holds: no vectors, but where they come from and how many.
    assert manifest["vector_index"] == {
        "archived": False,
        "rebuilt_from": "catalog",
        "documents": len(ids),
        "vectors": len(records),
    }
    assert manifest["stores"]["catalog"] > 0 and manifest["stores"]["raw"] == len(ids)

    # Twice into the same collection: the second restore, forced, finds the vectors already
    # there.
    for attempt, force in (("first", ()), ("again", ("--force",))):
        data, home = tmp_path / attempt / "data", tmp_path / attempt / "home"
        code, out = run_restore(
            archive, data, home, "--chroma-url", fresh_chroma, "--collection", "restored", *force
        )
        assert code == 0, out
        assert f"rebuilt {len(records)} vectors into the collection 'restored'" in out
        assert _records(fresh_chroma, "restored") == records
        assert _results(fresh_chroma, "restored", data) == before

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as restored:
        partitions = set(restored.get_dynamic_partitions("documents"))
    reports = document_reports(DocumentStore(data))
    assert {r.id: r.status for r in reports} == dict.fromkeys(ids, "indexed")
    assert partitions == set(ids)


def test_a_restore_into_the_live_index_is_refused_before_unpacking_unless_forced(
    instance, rag_env, backups, corpus: Path, tmp_path: Path, capsys
) -> None:
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in DOCS[:2]])
    assert materialize(instance, ids).success
    assert definitions().resolve_job_def("backup_job").execute_in_process(instance=instance).success
    [archive] = list(backups.glob("backup-*.tar.gz"))
    url, collection = rag_env["RAG_CHROMA_URL"], rag_env["RAG_CHROMA_COLLECTION"]
    # A document deleted since the backup: its vectors are gone from the live index.
    live = VectorIndex(connect(url), collection)
    assert live.delete_document(ids[0]) > 0
    before = _records(url, collection)
    assert before and all(id_.startswith(f"{ids[1]}:") for id_ in before)
    side = tmp_path / "side"

    # A side data dir and home, with the deployment's own RAG_CHROMA_URL and collection.
    code, out = run_restore(archive, side / "data", side / "home")

    assert code == 1
    assert (
        f"restore refused: the target Chroma collection already holds vectors: "
        f"{collection!r} ({len(before)} vectors). A restore never writes into a live index"
    ) in capsys.readouterr().err
    assert not side.exists(), "nothing was unpacked"
    assert _records(url, collection) == before

    code, out = run_restore(archive, side / "data", side / "home", "--force")

    assert code == 0, out
    # Forced, it writes into the live index: the deleted document's vectors are back.
    after = _records(url, collection)
    assert {id_.split(":")[0] for id_ in after} == set(ids)
    assert (side / "data" / "registry.db").exists()


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cli(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag_pipeline", *map(str, argv)],
        cwd=REPO,
        env={**os.environ, **CHILD_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def archive(instance, rag_env, backups, corpus: Path, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A backup of one registered document, made in process."""
    add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    assert definitions().resolve_job_def("backup_job").execute_in_process(instance=instance).success
    [archive] = list(backups.glob("backup-*.tar.gz"))
    return archive


def test_the_cli_refuses_to_restore_over_an_instance_or_data_and_changes_nothing(
    instance, rag_env, archive: Path, tmp_path: Path
) -> None:
    live_home, live_data = Path(instance.root_directory), Path(rag_env["RAG_DATA_DIR"])
    home_before, data_before = _tree(live_home), _tree(live_data)

    done = _cli(
        "restore", archive, "--data-dir", tmp_path / "new-data", "--dagster-home", live_home
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "restore refused: the target DAGSTER_HOME already holds instance storage "
        f"(history, schedules): {live_home}"
    )
    assert not (tmp_path / "new").exists()

    done = _cli("restore", archive, "--data-dir", live_data, "--dagster-home", tmp_path / "new")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"restore refused: the target data directory is not empty: {live_data}"
    )
    assert not (tmp_path / "new").exists()
    assert _tree(live_home) == home_before and _tree(live_data) == data_before

    # A home that holds only its own configuration keeps it and receives the instance.
    configured = tmp_path / "configured"
    configured.mkdir()
    (configured / "dagster.yaml").write_text((live_home / "dagster.yaml").read_text() + "# mine\n")
    done = _cli("restore", archive, "--data-dir", tmp_path / "d", "--dagster-home", configured)
    assert done.returncode == 0, done.stderr
    assert (configured / "dagster.yaml").read_text().endswith("# mine\n")
    assert (configured / "history" / "runs.db").exists()


def test_a_corrupt_archive_or_a_non_empty_target_is_refused(
    archive: Path, corpus: Path, tmp_path: Path
) -> None:

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archive, busy, tmp_path / "h1")
    assert (busy / "something").read_text() == "mine"

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    code, _ = run_restore(truncated, tmp_path / "t", tmp_path / "h2")
    assert code == 1
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())

    tampered = tmp_path / "tampered.tar.gz"
    changed = 0
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.startswith(("data/raw/", "data/incoming/")) and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
                changed += 1
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    assert changed, "the archive holds the document's bytes to tamper with"
    with pytest.raises(BackupError, match="sha256"):
        restore_backup(tampered, tmp_path / "t2", tmp_path / "h3")

    with pytest.raises(BackupError, match=r"not a backup|corrupt"):
        restore_backup(
            copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path / "x"),
            tmp_path / "t3",
            tmp_path / "h4",
        )
