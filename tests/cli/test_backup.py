"""Backups: consistent while a run writes, pruned only after success, PostgreSQL too."""

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.backups import CHILD_ENV, CLI_BACKUP_JOB, run_backup_job, run_restore
from support.env import REPO
from support.runs import add_files, copy_corpus, definitions, materialize

from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.storage.backup import read_manifest
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.resources import INDEX_WRITE_POOL, index_write_slot


def _waiting(instance: Any, holder: str) -> str | None:
    """The run id of a step waiting for the index-write pool under this holder name, if any."""
    info = instance.event_log_storage.get_concurrency_info(INDEX_WRITE_POOL)
    for step in info.pending_steps:
        if step.step_key == holder and step.assigned_timestamp is None:
            return str(step.run_id)
    return None


def _wait_for(what: str, found: Callable[[], Any], alive: list[subprocess.Popen[bytes]]) -> Any:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        for proc in alive:
            if proc.poll() is not None:
                pytest.fail(f"{what}: {proc.args[:3]} ended with {proc.returncode} first")
        time.sleep(0.2)
    pytest.fail(f"{what}: not seen within 180 s")


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, **CHILD_ENV}, stdout=out, stderr=subprocess.STDOUT
        )


def test_a_backup_taken_while_a_run_writes_restores_its_documents_as_processing(
    instance, rag_env, backups, fresh_chroma, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    names = [
        "pdf/pdfminer_naacl06-shinyama.pdf",
        "pdf/gutenberg_intro-to-mathematics_41568-pdf.pdf",
        "text/gutenberg_devils-dictionary_972.txt",
        "text/uns_norwich-city.txt",
        "markdown/haystack_sample.md",
        "markdown/plumber_README.md",
    ]
    ids = add_files(instance, [copy_corpus(corpus, rel, tmp_path / "in") for rel in names])
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    # The run writes from its own process, as runs do. Holding the index-write pool stops it
    # right before its index writes, so the backup is sure to start mid-run.
    script = (
        "import sys; from dagster import DagsterInstance; from support.runs import materialize; "
        "i = DagsterInstance.get(); sys.exit(0 if materialize(i, sys.argv[1:]).success else 1)"
    )
    started: list[subprocess.Popen[bytes]] = []
    try:
        with index_write_slot(instance, "test-holder", "test"):
            started.append(_spawn([sys.executable, "-c", script, *ids], tmp_path / "run.log"))
            _wait_for(
                "the run waiting for the pool",
                lambda: _waiting(instance, "ingest_documents"),
                started,
            )
            assert {r.status for r in document_reports(store)} == {"processing"}
            started.append(_spawn(CLI_BACKUP_JOB, tmp_path / "backup.log"))
            # The backup copies the instance first, then waits for the pool to copy the data.
            _wait_for(
                "the backup waiting for the pool", lambda: _waiting(instance, "backup"), started
            )
        writer, backup = started
        assert writer.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]
        assert backup.wait(timeout=300) == 0, (tmp_path / "backup.log").read_text()[-3000:]
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    [archive] = list(backups.glob("backup-*.tar.gz"))

    data, home = tmp_path / "r" / "data", tmp_path / "r" / "home"
    code, out = run_restore(archive, data, home, "--chroma-url", fresh_chroma)
    assert code == 0, out
    restored_store = DocumentStore(data)
    index = VectorIndex(connect(fresh_chroma), rag_env["RAG_CHROMA_COLLECTION"])
    _, rows = Catalog(restored_store).query("SELECT document_id, count(*) FROM chunks GROUP BY 1")
    chunks = dict(rows)
    # The data was copied after the instance: a document the run indexed meanwhile is whole in
    # the index, and the others have no vectors at all.
    in_index = set(restored_store.artifact_ids("lexical"))
    assert {doc: index.count(doc) for doc in ids} == {
        doc: chunks[doc] if doc in in_index else 0 for doc in ids
    }

    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as restored:
        reports = document_reports(restored_store)
        assert {r.id: r.status for r in reports} == dict.fromkeys(ids, "processing")
        monkeypatch.setenv("RAG_DATA_DIR", str(data))
        monkeypatch.setenv("RAG_CHROMA_URL", fresh_chroma)
        assert materialize(restored, ids).success
        reports = document_reports(restored_store)
    assert {r.id: r.status for r in reports} == dict.fromkeys(ids, "indexed")
    assert {doc: index.count(doc) for doc in ids} == {doc: chunks[doc] for doc in ids}


def _old_archives(backups: Path) -> tuple[Path, Path]:
    backups.mkdir(parents=True)
    old, recent = (
        backups / "backup-20200101T000000Z.tar.gz",
        backups / "backup-20990101T000000Z.tar.gz",
    )
    for path in (old, recent):
        path.write_bytes(b"x")
    long_ago = time.time() - 30 * 86400
    os.utime(old, (long_ago, long_ago))
    return old, recent


def test_old_archives_are_pruned_after_a_successful_backup(instance, rag_env, backups) -> None:
    old, recent = _old_archives(backups)

    result = definitions().resolve_job_def("backup_job").execute_in_process(instance=instance)

    assert result.success
    assert not old.exists() and recent.exists()
    assert len(list(backups.glob("backup-*.tar.gz"))) == 2


# No file the backup writes may grow past this: the target is full before the data fits.
FULL_AT = 1 << 20


@pytest.mark.parametrize(
    ("names", "fails_at"),
    [
        (["pdf/uns_pdf2image-memory-error-test-400p.pdf"], "a store's copy"),
        (
            [
                "pdf/gutenberg_intro-to-mathematics_41568-pdf.pdf",
                "pdf/plumber_federal-register-2020-17221.pdf",
            ],
            "the archive",
        ),
    ],
    ids=["store", "archive"],
)
def test_old_archives_survive_a_backup_that_fails_on_a_full_target(
    instance, rag_env, backups, corpus: Path, tmp_path: Path, names: list[str], fails_at: str
) -> None:
    old, recent = _old_archives(backups)
    files = [copy_corpus(corpus, name, tmp_path / "in") for name in names]
    add_files(instance, files)
    sizes = [f.stat().st_size for f in files]
    assert sum(sizes) > FULL_AT
    # One file too big fails its copy; files that each fit fail the archive that holds them.
    assert (max(sizes) > FULL_AT) == (fails_at == "a store's copy")
    assert max(p.stat().st_size for p in Path(instance.root_directory).rglob("*.db")) < FULL_AT
    no_retries = tmp_path / "no-retries.yaml"
    no_retries.write_text("execution:\n  config:\n    retries:\n      disabled: {}\n")

    done = run_backup_job(
        "-c",
        str(no_retries),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_AT, FULL_AT)),
    )

    assert done.returncode != 0
    assert "File too large" in done.stdout + done.stderr
    # The old archives are all there, and the failed attempt left nothing behind.
    assert sorted(backups.iterdir()) == [old, recent]


@pytest.mark.parametrize("instance", ["postgres"], indirect=True)
def test_a_postgres_instance_is_backed_up_with_pg_dump_and_restores(
    instance, rag_env, backups, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    from support.env import PG_ENV, pg_admin

    ids = add_files(instance, [copy_corpus(corpus, "markdown/haystack_sample.md", tmp_path)])
    assert materialize(instance, ids).success
    result = definitions().resolve_job_def("backup_job").execute_in_process(instance=instance)
    assert result.success
    [archive] = list(backups.glob("backup-*.tar.gz"))
    assert read_manifest(archive)["instance_storage"] == "postgres"

    data, home = tmp_path / "r" / "data", tmp_path / "r" / "home"
    # (Into a collection of its own: a restore never writes into the live one.)
    code, out = run_restore(archive, data, home, "--collection", f"restored-{os.getpid()}")
    assert code == 0 and "psql" in out
    # Load the dump into a fresh database, as the restore message says, and read it back.
    target = f"rag_restore_{os.getpid()}"
    admin = pg_admin()
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
            partitions = set(restored.get_dynamic_partitions("documents"))
        reports = document_reports(DocumentStore(data))
        assert {r.id: r.status for r in reports} == {ids[0]: "indexed"}
        assert ids[0] in partitions
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        admin.close()
