"""landing_zone_sensor logic, evaluated with build_sensor_context on a real instance and files."""

import os
import time
import uuid
from pathlib import Path

import pytest
from dagster import build_sensor_context
from support.landing import Daemon, drop, keys

from rag_pipeline.core.documents import landing
from rag_pipeline.core.documents.reports import document_reports
from rag_pipeline.core.documents.service import DocumentsService
from rag_pipeline.core.registry import DocumentStatus
from rag_pipeline.core.stages import ingest
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.orchestration.partitions import named_documents
from rag_pipeline.orchestration.resources import DocumentStoreResource
from rag_pipeline.orchestration.sensors import batch_run_requests, landing_zone_sensor


@pytest.fixture()
def store(tmp_path: Path) -> DocumentStore:
    store = DocumentStore(tmp_path / "data")
    store.landing_dir.mkdir(parents=True)
    return store


def test_a_new_file_becomes_a_partition_and_a_range_run(instance, store, corpus: Path) -> None:
    drop(corpus, "markdown/haystack_sample.md", store)
    drop(corpus, "markdown/plumber_README.md", store, name="default/notes/plumber.md")

    result = Daemon(instance, store).tick()

    added = keys(result)
    assert len(added) == 2 and any(k.startswith("plumber-") for k in added)
    [run] = result.run_requests or []
    assert run.tags["dagster/asset_partition_range_start"] == added[0]
    assert run.tags["dagster/asset_partition_range_end"] == added[-1]
    assert run.tags["rag/collection"] == "default"
    record = store.read_source(added[0])
    assert record is not None and record.landing_path is not None


def test_each_collection_gets_runs_of_its_own_over_a_contiguous_range(
    instance, store, corpus: Path
) -> None:
    store.registry.tenancy.create_collection("sub")
    drop(corpus, "markdown/haystack_sample.md", store, age=30)
    drop(corpus, "text/uns_norwich-city.txt", store, name="sub/dir/norwich.txt", age=20)
    drop(corpus, "markdown/plumber_README.md", store, age=10)

    result = Daemon(instance, store).tick()

    added = keys(result)
    assert [k.split("-")[0] for k in added] == ["haystack", "plumber", "sub"]
    runs = {r.tags["rag/collection"]: r.tags for r in result.run_requests or []}
    assert runs["default"]["rag/document_ids"] == ",".join(added[:2])
    assert runs["sub"]["rag/document_ids"] == added[2]
    assert store.read_source(added[2]).collection == "sub"  # type: ignore[union-attr]


def test_files_still_being_written_are_left_alone(instance, store, corpus: Path) -> None:
    in_progress = [
        drop(corpus, "markdown/haystack_sample.md", store, name=name)
        for name in ("upload.md.part", "notes.md.tmp", ".hidden.md", "report.pdf.crdownload")
    ]
    growing = drop(corpus, "text/uns_norwich-city.txt", store, age=0)
    written_at = growing.stat().st_mtime
    daemon = Daemon(instance, store)

    # Looked at within the settle time of its last write, however late this test runs.
    first = daemon.tick(looked_at=written_at + landing.SETTLE_SECONDS / 2)
    assert keys(first) == [], "a file written just now waits for a second look"
    with growing.open("a") as fh:
        fh.write("more text arriving\n")
    assert keys(daemon.tick()) == [], "it changed since the last look"
    [key] = keys(daemon.tick())
    assert key.startswith("uns-norwich-city-")

    assert all(path.exists() for path in in_progress), "files being written stay where they are"
    assert not (store.landing_dir / "rejected").exists()
    assert [r.filename for r in document_reports(store)] == ["uns_norwich-city.txt"]
    assert instance.get_dynamic_partitions("documents") == [key]


def test_unsupported_and_empty_files_are_rejected_with_a_record(
    instance, store, corpus: Path, tmp_path: Path
) -> None:
    drop(corpus, "text/uns_empty.txt", store)
    gif = store.landing_dir / "photo.pdf"  # PNG, JPEG and TIFF are read by OCR; GIF is not
    gif.write_bytes(b"GIF89a" + os.urandom(2000))
    os.utime(gif, (time.time() - 5, time.time() - 5))

    result = Daemon(instance, store).tick()

    assert keys(result) == []
    assert instance.get_dynamic_partitions("documents") == []
    rejected, _ = store.registry.reads.page(DocumentStatus.rejected)
    codes = {doc.filename: doc.error_code for doc in rejected}
    assert codes == {"uns_empty.txt": "empty_file", "photo.pdf": "unsupported_type"}
    assert (store.landing_dir / "rejected" / "photo.pdf").exists()
    assert not gif.exists()


def test_a_repeated_tick_requests_nothing_new(instance, store, corpus: Path) -> None:
    drop(corpus, "markdown/haystack_sample.md", store)
    daemon = Daemon(instance, store)
    first = daemon.tick()
    assert len(keys(first)) == 1

    again = daemon.tick()

    assert keys(again) == [] and not again.run_requests
    assert len(instance.get_dynamic_partitions("documents")) == 1


def test_a_cursor_from_before_a_restart_keeps_the_sensor_correct(
    instance, store, corpus: Path
) -> None:
    drop(corpus, "markdown/haystack_sample.md", store)
    before = Daemon(instance, store)
    first = before.tick()

    # The daemon restarts: a new evaluator with the stored cursor, and one with none at all.
    after = Daemon(instance, store)
    after.cursor = before.cursor
    assert keys(after.tick()) == []
    lost_cursor = Daemon(instance, store)
    assert keys(lost_cursor.tick()) == [], "the partition exists: the file is in flight"
    # Same batch, same run key: the daemon launches a batch once however often it is asked.
    [run] = first.run_requests or []
    added = keys(first)
    [again] = batch_run_requests([store.registry.reads.get(key) for key in added])  # type: ignore[misc]
    assert again.run_key == run.run_key


def test_a_tick_whose_result_was_lost_is_repeated(instance, store, corpus: Path) -> None:
    drop(corpus, "markdown/haystack_sample.md", store)
    context = build_sensor_context(
        instance=instance, resources={"documents": DocumentStoreResource(data_dir=str(store.root))}
    )
    lost = landing_zone_sensor(context)  # evaluated, but the daemon died before applying it

    retried = Daemon(instance, store).tick()

    assert keys(retried) == keys(lost)
    [run] = retried.run_requests or []
    assert [r.run_key for r in lost.run_requests or []] == [run.run_key], "launched once"


def test_a_document_deleted_and_uploaded_again_gets_a_new_run_key(
    instance, store, corpus: Path
) -> None:
    daemon = Daemon(instance, store)
    drop(corpus, "markdown/haystack_sample.md", store)
    first = daemon.tick()
    [key] = keys(first)
    ingest.raw_document(store, key)
    gone = store.registry.lifecycle.retire(key, "test")
    assert gone is not None
    store.remove_files(gone)
    instance.delete_dynamic_partition("documents", key)
    drop(corpus, "markdown/haystack_sample.md", store)

    second = daemon.tick()

    assert keys(second) == [key]
    [run_1], [run_2] = first.run_requests, second.run_requests
    assert run_1.run_key != run_2.run_key, "the daemon would silently skip a reused run key"


def test_identical_bytes_are_never_ingested_twice(instance, store, corpus: Path) -> None:
    daemon = Daemon(instance, store)
    drop(corpus, "markdown/haystack_sample.md", store)
    [key] = keys(daemon.tick())
    ingest.raw_document(store, key)  # takes the bytes and moves the landing copy on
    assert (store.landing_dir / "processed" / "haystack_sample.md").exists()
    drop(corpus, "markdown/haystack_sample.md", store)  # the same file arrives again

    result = daemon.tick()

    assert keys(result) == []
    assert not (store.landing_dir / "haystack_sample.md").exists(), "moved to processed/ too"
    assert instance.get_dynamic_partitions("documents") == [key]


def test_a_replaced_file_is_a_new_version_that_supersedes_the_old(
    instance, store, corpus: Path
) -> None:
    daemon = Daemon(instance, store)
    drop(corpus, "markdown/haystack_sample.md", store, name="notes.md")
    [old] = keys(daemon.tick())
    ingest.raw_document(store, old)
    drop(corpus, "markdown/uns_codeblock.md", store, name="notes.md")

    [new] = keys(daemon.tick())

    assert new != old and new.startswith("notes-")
    record = store.read_source(new)
    assert record is not None and record.supersedes == old


def test_an_upload_deleted_before_pickup_is_never_ingested(instance, store) -> None:
    service = DocumentsService(store)
    accepted = service.upload(b"A paragraph that somebody deletes at once.\n", "a.txt")
    # The API's delete commits before the sensor's claim: the claim never sees it.
    assert (
        store.registry.lifecycle.retire(accepted.document.id, "deleted through the API") is not None
    )

    result = Daemon(instance, store).tick()

    assert keys(result) == [] and not result.run_requests
    assert store.registry.reads.get(accepted.document.id).status == "deleted"  # type: ignore[union-attr]


def test_an_upload_is_picked_up_once_in_the_run_of_its_tick(instance, store) -> None:
    service = DocumentsService(store)
    first = service.upload(b"The first note of the day.\n", "first.txt").document
    second = service.upload(b"The second note of the day.\n", "second.txt").document
    daemon = Daemon(instance, store)

    result = daemon.tick()

    assert keys(result) == [first.id, second.id]
    [run] = result.run_requests or []
    assert run.tags["rag/document_ids"] == f"{first.id},{second.id}"
    assert keys(daemon.tick()) == []


def test_batches_follow_the_work(instance, store, corpus: Path, monkeypatch) -> None:
    """Short notes share runs up to the byte budget; a large document runs alone, in the large
    lane; every document is in exactly one run, in arrival order."""
    from rag_pipeline.settings import get_settings

    monkeypatch.setenv("RAG_RUN_BUDGET_MB", "0.1")  # 100 KiB of files per run
    monkeypatch.setenv("RAG_LARGE_DOCUMENT_MB", "0.5")
    get_settings.cache_clear()
    try:
        past = time.time() - 60
        for n in range(40):  # 30 notes of 3.3 KB, a 3.6 MB book, 10 more notes
            if n == 30:
                drop(corpus, "pdf/uns_pdf2image-memory-error-test-400p.pdf", store, "book.pdf")
                os.utime(store.landing_dir / "book.pdf", (past + n, past + n))
            note = store.landing_dir / f"note-{n:02d}.txt"
            note.write_text(f"Note {n}: " + "warm workers batch by bytes. " * 110)
            os.utime(note, (past + n + 0.5, past + n + 0.5))
        result = Daemon(instance, store).tick()
    finally:
        get_settings.cache_clear()

    runs = result.run_requests or []
    docs = {doc.id: doc for doc in map(store.registry.reads.get, keys(result)) if doc is not None}
    in_runs = [named_documents(r.tags) for r in runs]
    assert [k for run in in_runs for k in run] == keys(result), "each document once, in order"
    assert sorted(keys(result)) == sorted(docs) and len(docs) == 41
    book = next(doc.id for doc in docs.values() if doc.filename == "book.pdf")
    [book_run] = [r for r, members in zip(runs, in_runs, strict=True) if book in members]
    assert named_documents(book_run.tags) == [book], "the book runs alone"
    assert book_run.tags["rag/lane"] == "large"
    small = [r for r in runs if r is not book_run]
    assert all(r.tags["rag/lane"] == "small" for r in small)
    # 30 notes of 3.3 KB fill one 100 KiB run before the book; the 10 after it share another.
    assert [int(r.tags["rag/documents"]) for r in small] == [30, 10]
    assert all(int(r.tags["rag/bytes"]) <= 100 * 1024 for r in small)


SQUAD = "retrieval/squad_v1.1_dev/docs"


def _hold_slots(instance, n: int) -> None:  # type: ignore[no-untyped-def]
    """Runs holding `n` of the instance's two run slots, as runs executing on workers do."""
    from dagster import DagsterRun, DagsterRunStatus

    for _ in range(n):
        run = DagsterRun(
            job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
        )
        instance.add_run(run)


def _drop_articles(corpus: Path, store: DocumentStore, n: int) -> list[str]:
    names = sorted(p.name for p in (corpus / SQUAD).iterdir())[:n]
    for age, name in enumerate(reversed(names)):
        drop(corpus, f"{SQUAD}/{name}", store, age=5 + age)
    return names


def _ranges(result, added: list[str]) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Each run's documents, as the range its tags name over the partitions in order."""
    spans = []
    for run in result.run_requests or []:
        start = added.index(run.tags["dagster/asset_partition_range_start"])
        end = added.index(run.tags["dagster/asset_partition_range_end"])
        assert run.tags["rag/document_ids"].split(",") == added[start : end + 1]
        spans.append(added[start : end + 1])
    return spans


def test_waiting_work_is_shared_among_the_free_run_slots(instance, store, corpus: Path) -> None:
    """Twelve articles (~30 KB each) with both slots free: two runs, one per slot, together
    covering every document once, each a contiguous range, in order."""
    _drop_articles(corpus, store, 12)

    result = Daemon(instance, store).tick()

    added = keys(result)
    spans = _ranges(result, added)
    assert len(added) == 12
    assert len(spans) == 2, "one run per free slot"
    assert [key for span in spans for key in span] == added, "all, in order, none twice"
    sizes = [sum(store.registry.reads.get(k).bytes for k in span) for span in spans]  # type: ignore[union-attr]
    assert min(sizes) >= max(sizes) / 3, f"the shares are lopsided: {sizes}"


def test_with_one_slot_free_the_work_is_one_run(instance, store, corpus: Path) -> None:
    _hold_slots(instance, 1)
    _drop_articles(corpus, store, 12)

    result = Daemon(instance, store).tick()

    added = keys(result)
    assert len(added) == 12
    assert _ranges(result, added) == [added]


def test_with_no_slot_free_the_work_waits_as_one_run(instance, store, corpus: Path) -> None:
    _hold_slots(instance, 2)
    _drop_articles(corpus, store, 12)

    result = Daemon(instance, store).tick()

    assert len(result.run_requests or []) == 1


def test_a_small_wait_is_not_split_below_the_minimum_share(instance, store, corpus: Path) -> None:
    """Two articles (~45 KB together) are less than two shares of RAG_RUN_SHARE_MIN_KB (64):
    one run, though both slots are free."""
    _drop_articles(corpus, store, 2)

    result = Daemon(instance, store).tick()

    added = keys(result)
    assert len(added) == 2
    assert _ranges(result, added) == [added]
