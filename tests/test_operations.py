"""Backup, restore and cleanup, on real data in a real instance and Chroma server."""

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import (
    BIN,
    REPO,
    add_files,
    copy_corpus,
    definitions,
    materialize,
    run_cli,
    start_chroma,
)

from rag_pipeline.core import landing
from rag_pipeline.core.backup import BackupError, restore_backup
from rag_pipeline.core.catalog import Catalog
from rag_pipeline.core.embedding import get_embedder
from rag_pipeline.core.index import VectorIndex, connect
from rag_pipeline.core.lexical import LexicalIndex
from rag_pipeline.core.search import search
from rag_pipeline.core.store import DocumentStore
from rag_pipeline.resources import index_write_slot
from rag_pipeline.status import document_reports

QUERIES = ["Norwich City football club", "haystack pipelines", "extract text from pdf pages"]
# The backup job as an operator runs it, from Dagster's command line.
CLI_BACKUP_JOB = [
    str(BIN / "dagster"),
    "job",
    "execute",
    "-m",
    "rag_pipeline.definitions",
    "-j",
    "backup_job",
]
DOCS = ["text/uns_norwich-city.txt", "markdown/haystack_sample.md", "markdown/plumber_README.md"]


@pytest.fixture()
def backups(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "backups"
    monkeypatch.setenv("RAG_BACKUP_DIR", str(folder))
    return folder


def _results(chroma_url: str, collection: str, data_dir: Path) -> list[list[tuple[str, float]]]:
    index = VectorIndex(connect(chroma_url), collection)
    embedder = get_embedder("hash-384")
    catalog = Catalog(DocumentStore(data_dir))
    lexicon = LexicalIndex(DocumentStore(data_dir))
    return [
        [
            (r.document_id, r.chunk_no, r.score, r.text)
            for r in search(
                q, k=5, embedder=embedder, index=index, lexicon=lexicon, catalog=catalog
            )
        ]
        for q in QUERIES
    ]


@pytest.fixture()
def own_chroma(tmp_path: Path, monkeypatch, rag_env):  # type: ignore[no-untyped-def]
    """A Chroma server whose data lives under RAG_DATA_DIR, as `make run` sets it up."""
    proc, url = start_chroma(Path(rag_env["RAG_DATA_DIR"]) / "chroma")
    monkeypatch.setenv("RAG_CHROMA_URL", url)
    rag_env["RAG_CHROMA_URL"] = url
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_backup_job_from_the_cli_restores_to_identical_search_results(
    instance, rag_env, own_chroma, backups, corpus: Path, tmp_path: Path
) -> None:
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in DOCS])
    assert materialize(instance, ids).success
    before = _results(own_chroma, rag_env["RAG_CHROMA_COLLECTION"], Path(rag_env["RAG_DATA_DIR"]))
    assert all(before)

    done = subprocess.run(
        CLI_BACKUP_JOB,
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [archive] = list(backups.glob("backup-*.tar.gz"))

    data, home = tmp_path / "restored" / "data", tmp_path / "restored" / "home"
    code, out = run_cli(
        ["restore", str(archive), "--data-dir", str(data), "--dagster-home", str(home)]
    )
    assert code == 0, out
    proc, url = start_chroma(data / "chroma")
    try:
        after = _results(url, rag_env["RAG_CHROMA_COLLECTION"], data)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert after == before

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as restored:
        reports = document_reports(DocumentStore(data))

        partitions = set(restored.get_dynamic_partitions("documents"))
    assert {r.id: r.status for r in reports} == dict.fromkeys(ids, "indexed")
    assert partitions == set(ids)


def test_a_backup_taken_while_a_run_writes_restores_consistently(
    instance, rag_env, own_chroma, backups, corpus: Path, tmp_path: Path
) -> None:
    names = [
        "pdf/pdfminer_naacl06-shinyama.pdf",
        "pdf/gutenberg_intro-to-mathematics_41568-pdf.pdf",
        "text/gutenberg_devils-dictionary_972.txt",
        *DOCS,
    ]
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in names])
    # The run writes from its own process, as runs do. Holding the index-write pool stops it
    # right before its index writes, so the backup is sure to start mid-run.
    script = (
        "import sys; from dagster import DagsterInstance; from conftest import materialize; "
        "i = DagsterInstance.get(); sys.exit(0 if materialize(i, sys.argv[1:]).success else 1)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    with index_write_slot(instance, "test-holder", "test"):
        writer = subprocess.Popen(
            [sys.executable, "-c", script, *ids],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        store = DocumentStore(rag_env["RAG_DATA_DIR"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stages = [r.stages["chunk_embeddings"].state for r in document_reports(store)]
            if stages and all(state == "materialized" for state in stages):
                break
            time.sleep(0.5)
        backup = subprocess.Popen(
            CLI_BACKUP_JOB,
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(5)  # both now wait for the pool
    assert writer.wait(timeout=300) == 0
    assert backup.wait(timeout=300) == 0
    [archive] = list(backups.glob("backup-*.tar.gz"))

    data, home = tmp_path / "r" / "data", tmp_path / "r" / "home"
    restore_backup(archive, data, home)
    proc, url = start_chroma(data / "chroma")
    try:
        index = VectorIndex(connect(url), rag_env["RAG_CHROMA_COLLECTION"])
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as restored:
            reports = document_reports(DocumentStore(data))
            partitions = set(restored.get_dynamic_partitions("documents"))
        assert {r.id for r in reports} <= partitions
        catalog = Catalog(DocumentStore(data))
        _, rows = catalog.query("SELECT document_id, count(*) FROM chunks GROUP BY 1")
        chunks = dict(rows)
        indexed = [r for r in reports if r.status == "indexed"]
        for report in indexed:
            # Whatever the restored instance calls indexed is whole: catalog and vectors agree.
            assert index.count(report.id) == report.chunks == chunks[report.id]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_corrupt_archive_or_a_non_empty_target_is_refused(
    instance, rag_env, backups, corpus: Path, tmp_path: Path
) -> None:
    add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    assert definitions().resolve_job_def("backup_job").execute_in_process(instance=instance).success
    [archive] = list(backups.glob("backup-*.tar.gz"))

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archive, busy, tmp_path / "h1")
    assert (busy / "something").read_text() == "mine"

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    code, _ = run_cli(
        [
            "restore",
            str(truncated),
            "--data-dir",
            str(tmp_path / "t"),
            "--dagster-home",
            str(tmp_path / "h2"),
        ]
    )
    assert code == 1
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())

    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.startswith("data/sources/") and member.name.endswith(".json"):
                data = data.replace(b"haystack", b"HAYSTACK")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="sha256"):
        restore_backup(tampered, tmp_path / "t2", tmp_path / "h3")

    with pytest.raises(BackupError, match=r"not a backup|corrupt"):
        restore_backup(
            copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path / "x"),
            tmp_path / "t3",
            tmp_path / "h4",
        )


def test_old_archives_are_pruned_only_after_a_successful_backup(instance, rag_env, backups) -> None:
    backups.mkdir(parents=True)
    old, recent = (
        backups / "backup-20200101T000000Z.tar.gz",
        backups / "backup-20990101T000000Z.tar.gz",
    )
    for path in (old, recent):
        path.write_bytes(b"x")
    long_ago = time.time() - 30 * 86400
    os.utime(old, (long_ago, long_ago))

    result = definitions().resolve_job_def("backup_job").execute_in_process(instance=instance)

    assert result.success
    assert not old.exists() and recent.exists()
    assert len(list(backups.glob("backup-*.tar.gz"))) == 2


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_cleanup_rules_each_remove_what_they_should_and_are_idempotent(
    instance, rag_env, corpus: Path, tmp_path: Path
) -> None:
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    [live] = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    [gone] = add_files(instance, [copy_corpus(corpus, "text/uns_norwich-city.txt", tmp_path)])
    assert materialize(instance, [live, gone]).success
    index = VectorIndex(connect(rag_env["RAG_CHROMA_URL"]), rag_env["RAG_CHROMA_COLLECTION"])
    # An orphan: its partition and source vanished without its artifacts and vectors.
    instance.delete_dynamic_partition("documents", gone)
    store.source_path(gone).unlink()

    processed = store.landing_dir / "processed" / "old.md"
    fresh_processed = store.landing_dir / "processed" / "new.md"
    partial = store.landing_dir / "upload.pdf.part"
    fresh_partial = store.landing_dir / "writing.txt.part"
    for path in (processed, fresh_processed, partial, fresh_partial):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    _age(processed, 2 * 86400)
    _age(partial, 2 * 86400)
    (store.landing_dir / "bad.txt").write_bytes(b"")
    rejection = landing.take(store, "bad.txt", lambda key: False).rejection
    assert rejection is not None
    for path in (store.landing_dir / "rejected").iterdir():
        _age(path, 40 * 86400)
    stale_tmp = store.catalog_dir / "chunks" / ".x.parquet.123.tmp"
    stale_tmp.write_text("half")
    _age(stale_tmp, 2 * 86400)

    job = definitions().resolve_job_def("cleanup_job")
    first = job.execute_in_process(instance=instance)
    second = job.execute_in_process(instance=instance)

    meta = _metadata(first)
    assert meta["processed_deleted"] == 1 and meta["partial_deleted"] == 2
    assert meta["rejected_deleted"] == 1
    assert meta["orphan_artifacts_deleted"] >= 4 and meta["orphan_vectors_deleted"] > 0
    assert all(v == 0 for k, v in _metadata(second).items() if k != "runs_deleted"), _metadata(
        second
    )
    assert fresh_processed.exists() and fresh_partial.exists() and not processed.exists()
    assert index.count(gone) == 0 and index.count(live) > 0
    assert (
        not store.artifact_path("chunks", gone).exists()
        and store.artifact_path("chunks", live).exists()
    )


def test_cleanup_deletes_run_history_past_its_retention(instance, rag_env, monkeypatch) -> None:
    job = definitions().resolve_job_def("cleanup_job")
    old_run = job.execute_in_process(instance=instance).run_id
    monkeypatch.setenv("RUN_RETENTION_DAYS", "0")
    result = definitions().resolve_job_def("cleanup_job").execute_in_process(instance=instance)
    assert _metadata(result)["runs_deleted"] >= 1
    assert instance.get_run_by_id(old_run) is None
    assert instance.get_run_by_id(result.run_id) is not None


def _metadata(result) -> dict:  # type: ignore[no-untyped-def]
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


@pytest.mark.parametrize("instance", ["postgres"], indirect=True)
def test_a_postgres_instance_is_backed_up_with_pg_dump_and_restores(
    instance, rag_env, backups, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    import psycopg2
    from conftest import PG_ENV

    ids = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    assert materialize(instance, ids).success
    result = definitions().resolve_job_def("backup_job").execute_in_process(instance=instance)
    assert result.success and _metadata(result)["instance_storage"] == "postgres"
    [archive] = list(backups.glob("backup-*.tar.gz"))

    data, home = tmp_path / "r" / "data", tmp_path / "r" / "home"
    code, out = run_cli(
        ["restore", str(archive), "--data-dir", str(data), "--dagster-home", str(home)]
    )
    assert code == 0 and "psql" in out
    # Load the dump into a fresh database, as the restore message says, and read it back.
    target = f"rag_restore_{os.getpid()}"
    admin = psycopg2.connect(
        host=PG_ENV["DAGSTER_PG_HOST"],
        port=PG_ENV["DAGSTER_PG_PORT"],
        user=PG_ENV["DAGSTER_PG_USER"],
        password=PG_ENV["DAGSTER_PG_PASSWORD"],
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{target}"')
        cur.execute(f'CREATE DATABASE "{target}"')
    try:
        loaded = subprocess.run(
            [
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                PG_ENV["DAGSTER_PG_HOST"],
                "-p",
                PG_ENV["DAGSTER_PG_PORT"],
                "-U",
                PG_ENV["DAGSTER_PG_USER"],
                "-d",
                target,
                "-f",
                str(home / "postgres.sql"),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": PG_ENV["DAGSTER_PG_PASSWORD"]},
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        monkeypatch.setenv("DAGSTER_PG_DB", target)
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as restored:
            reports = document_reports(DocumentStore(data))

            partitions = set(restored.get_dynamic_partitions("documents"))
        assert {r.id: r.status for r in reports} == {ids[0]: "indexed"}
        assert ids[0] in partitions
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        admin.close()
