"""Entry points 2 and 3 with the real daemon: files dropped into the landing zone, and a backfill.

A real `dagster-daemon` runs on a temporary DAGSTER_HOME and the project's workspace.yaml, the
sensor and the queued run coordinator launch real run workers, and the real model embeds.
"""

import shutil
import time
import uuid
from pathlib import Path

import pytest

from rag_pipeline.core.documents.reports import DocumentStatus, document_reports
from rag_pipeline.core.retrieval.lexical import LexicalIndex
from rag_pipeline.core.retrieval.search import Part, Scope, search
from rag_pipeline.core.retrieval.vector_index import VectorIndex, connect
from rag_pipeline.core.stages.embedders import get_embedder
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

TERMINAL = {DocumentStatus.indexed, DocumentStatus.failed, DocumentStatus.rejected}

GOOD = [
    "pdf/sf_minimal-document.pdf",
    "pdf/pdfminer_naacl06-shinyama.pdf",
    "pdf/pypdf_r6-empty-password.pdf",
    "markdown/haystack_sample.md",
    "markdown/uns_codeblock.md",
    "text/uns_norwich-city.txt",
    "text/chardet_windows-1252_dutch.txt",
    "text/uns_fake-text-utf-16.txt",
]
DAMAGED = {
    "pdf_problem/uns_password.pdf": "password_required",
    "pdf_problem/pdfjs_Pages-tree-refs.pdf": "damaged_pdf",
}


def _wait_for(instance, store: DocumentStore, expected: int, timeout: float, log: Path) -> list:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    reports: list = []
    while time.monotonic() < deadline:
        reports = document_reports(store)
        if len(reports) >= expected and all(r.status in TERMINAL for r in reports):
            return reports
        time.sleep(1)
    states = {r.id: r.status for r in reports}
    pytest.fail(f"not terminal after {timeout} s: {states}\n{log.read_text()[-3000:]}")


@pytest.mark.e2e
@pytest.mark.parametrize(
    "daemon_env",
    # PostgreSQL storage holds nothing model-specific: hash-384 is enough for it.
    [{}, {"storage": "postgres", "RAG_EMBEDDING_MODEL": "hash-384"}],
    indirect=True,
    ids=["sqlite", "postgres"],
)
def test_files_dropped_into_the_landing_zone_are_ingested_in_batches(
    daemon, daemon_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    from dagster import DagsterInstance, RunsFilter

    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    store = DocumentStore(daemon_env["RAG_DATA_DIR"])
    # The folder of a collection: its files go to it.
    team = store.registry.tenancy.create_collection("team-a")
    assert team is not None
    inbox = store.landing_dir / "team-a"
    inbox.mkdir(parents=True)
    for rel in [*GOOD, *DAMAGED]:
        # Written elsewhere, then renamed in: the way careful writers deliver files.
        tmp = inbox / f".{Path(rel).name}.part"
        shutil.copyfile(corpus / rel, tmp)
        tmp.rename(inbox / Path(rel).name)
    (inbox / "empty.txt").write_bytes(b"")

    with DagsterInstance.get() as instance:
        # The empty file is listed too, as rejected.
        expected = len(GOOD) + len(DAMAGED) + 1
        reports = _wait_for(instance, store, expected, 420, tmp_path / "daemon.log")
        runs = instance.get_run_records(RunsFilter(tags={"rag/source": "landing_zone"}))

    by_name = {r.filename: r for r in reports}
    for rel, code in DAMAGED.items():
        report = by_name[Path(rel).name]
        assert report.status == "failed" and report.error is not None
        assert (report.error.stage, report.error.code) == ("document_text", code)
    for rel in GOOD:
        assert by_name[Path(rel).name].status == "indexed", (rel, by_name[Path(rel).name].error)
    # Batched: 10 documents at up to 4 per run, not one run each.
    assert 3 <= len(runs) <= 6
    assert {r.dagster_run.tags["rag/collection"] for r in runs} == {"team-a"}
    assert {r.collection for r in reports} == {"team-a"}
    rejected, _ = store.registry.reads.page(DocumentStatus.rejected)
    assert [doc.error_code for doc in rejected] == ["empty_file"]
    assert sorted(p.name for p in (store.landing_dir / "processed" / "team-a").iterdir()) == sorted(
        Path(rel).name for rel in [*GOOD, *DAMAGED]
    )

    index = VectorIndex(connect(daemon_env["RAG_CHROMA_URL"]), daemon_env["RAG_CHROMA_COLLECTION"])
    hits = search(
        "To ensure that an article can have several different relations, we let each article "
        "belong to several different clusters.",
        k=1,
        embedder=get_embedder(daemon_env["RAG_EMBEDDING_MODEL"]),
        index=index,
        lexicon=LexicalIndex(store),
        catalog=Catalog(store),
        scope=Scope([Part("team-a", team.index_suffix)]),
    )
    assert hits[0].filename == "pdfminer_naacl06-shinyama.pdf" and hits[0].page == 3


@pytest.mark.e2e
@pytest.mark.parametrize("daemon_env", [{"RAG_EMBEDDING_MODEL": "hash-384"}], indirect=True)
def test_a_backfill_runs_batches_and_can_rerun_one_stage(
    daemon, daemon_env, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.execution.backfill import PartitionBackfill
    from support.runs import add_files, copy_corpus, wait_for

    from rag_pipeline.definitions import defs

    for name, value in daemon_env.items():
        monkeypatch.setenv(name, value)
    files = [copy_corpus(corpus, rel, tmp_path / "in") for rel in [*GOOD, *DAMAGED]]
    store = DocumentStore(daemon_env["RAG_DATA_DIR"])
    stages = [
        AssetKey(s)
        for s in (
            "raw_document",
            "document_text",
            "document_chunks",
            "chunk_embeddings",
            "vector_index",
        )
    ]

    def backfill(instance, keys: list[str], selection: list) -> str:  # type: ignore[no-untyped-def]
        backfill_id = uuid.uuid4().hex[:8]
        instance.add_backfill(
            PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id,
                asset_graph=defs.resolve_asset_graph(),
                partition_names=keys,
                asset_selection=selection,
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title=None,
                description=None,
                run_config=None,
            )
        )
        # What a user waits for is the documents, not the backfill's own bookkeeping: the
        # daemon marks it complete on a later pass of its 30 s loop.
        return backfill_id

    with DagsterInstance.get() as instance:
        ids = add_files(instance, files)
        first = backfill(instance, ids, stages)
        reports = _wait_for(instance, store, len(ids), 300, tmp_path / "daemon.log")
        runs = instance.get_run_records(RunsFilter(tags={"dagster/backfill": first}))
        assert len(runs) == 3, "10 documents at up to 4 per run"
        # Executed by the warm worker, whose process tagged each run it ran.
        assert all("rag/worker" in r.dagster_run.tags for r in runs)
        statuses = {r.id: r.status for r in reports}
        assert [statuses[i] for i in ids[: len(GOOD)]] == ["indexed"] * len(GOOD)
        assert [statuses[i] for i in ids[len(GOOD) :]] == ["failed"] * len(DAMAGED)

        before = {r.id: r.stages for r in reports}
        subset = ids[:3]
        second = backfill(instance, subset, stages[3:])
        # Every document is terminal already: what to wait for is the second backfill's own
        # run, finished, and then the documents terminal again.
        [rerun] = wait_for(
            lambda: [
                r
                for r in instance.get_run_records(RunsFilter(tags={"dagster/backfill": second}))
                if r.dagster_run.is_finished
            ],
            300,
            "the second backfill's run finished",
            tmp_path / "worker.log",
        )
        assert rerun.dagster_run.status == DagsterRunStatus.SUCCESS
        _wait_for(instance, store, len(ids), 300, tmp_path / "daemon.log")
        assert len(instance.get_run_records(RunsFilter(tags={"dagster/backfill": second}))) == 1
        after = {r.id: r.stages for r in document_reports(store)}
        for key in subset:
            assert after[key]["vector_index"].run_id == rerun.dagster_run.run_id
            assert (
                after[key]["document_text"].materialized_at
                == before[key]["document_text"].materialized_at
            )
            assert (
                after[key]["vector_index"].materialized_at
                > before[key]["vector_index"].materialized_at
            )
        untouched = ids[3]
        assert (
            after[untouched]["vector_index"].materialized_at
            == before[untouched]["vector_index"].materialized_at
        )
