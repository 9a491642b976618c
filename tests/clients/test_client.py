"""Every endpoint the client wraps, against the real API and the real pipeline behind it.

Each test works in its own collection, so the session's shared stack cannot mix them up.
"""

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from conftest import PAPER, PHRASE, WAIT, Stack

from rag_client import (
    AsyncClient,
    Client,
    Conflict,
    DocumentStatus,
    Forbidden,
    IngestFailed,
    InvalidRequest,
    NotFound,
    Role,
    Unauthorized,
    UploadProgress,
    WaitTimeout,
)

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

NOTE = "text/uns_norwich-city.txt"
DAMAGED = "pdf_problem/pdfjs_Pages-tree-refs.pdf"


def _collection(admin: Client, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    admin.create_collection(name)
    return name


def test_upload_follow_read_and_search_a_document(admin: Client, corpus: Path) -> None:
    collection = _collection(admin, "flow")
    [doc] = admin.upload(corpus / PAPER, collection=collection, metadata={"topic": "nlp"})
    assert (doc.filename, doc.duplicate) == ("pdfminer_naacl06-shinyama.pdf", False)

    seen = list(admin.events(doc.id, timeout=WAIT))
    assert seen and seen[-1].status == DocumentStatus.indexed, [d.status for d in seen]
    assert seen[0].status in {DocumentStatus.queued, DocumentStatus.processing}, seen[0]
    indexed = admin.wait_until_indexed(doc.id, timeout=60)
    assert indexed.status == DocumentStatus.indexed and indexed.chunks

    got = admin.document(doc.id)
    assert (got.collection, got.metadata, got.run_ids) == (
        collection,
        {"topic": "nlp"},
        got.run_ids,
    )
    assert got.run_ids and got.stages["vector_index"].state == "materialized"

    page = admin.documents(collections=[collection], filter={"topic": "nlp"})
    assert [d.id for d in page.items] == [doc.id] and page.total == 1
    assert admin.documents(collections=[collection], filter={"topic": "law"}).total == 0
    assert admin.documents(collections=[collection], status="failed").total == 0

    chunks = admin.chunks(doc.id, limit=500)
    assert chunks.total == indexed.chunks == len(chunks.items)
    assert [c.chunk_no for c in chunks.items] == list(range(indexed.chunks))

    found = admin.search(PHRASE, k=3, mode="lexical", collections=[collection])
    top = found.results[0]
    assert (top.document_id, top.page, top.collection) == (doc.id, 3, collection)
    assert PHRASE in top.text.replace("\n", " ")
    cited = chunks.items[top.chunk_no]
    assert (cited.char_start, cited.char_end, cited.text) == (
        top.char_start,
        top.char_end,
        top.text,
    )

    changed = admin.update_metadata(doc.id, {"topic": "law", "year": 2006})
    assert changed.metadata == {"topic": "law", "year": 2006}
    hits = admin.search(PHRASE, k=3, collections=[collection], filter={"topic": "nlp"}).results
    assert hits == []
    hits = admin.search(PHRASE, k=3, collections=[collection], filter={"year": {"$gte": 2000}})
    assert hits.results and {h.document_id for h in hits.results} == {doc.id}


def test_bytes_replace_delete_and_missing_documents(admin: Client, corpus: Path) -> None:
    collection = _collection(admin, "versions")
    note = (corpus / NOTE).read_bytes()
    [first] = admin.upload(("norwich.txt", note), collection=collection)
    admin.wait_until_indexed(first.id, timeout=WAIT)
    [again] = admin.upload(("norwich.txt", note), collection=collection)
    assert (again.id, again.duplicate) == (first.id, True)

    new = admin.replace(first.id, ("norwich.txt", note + b"\nA second version of the note.\n"))
    assert new.id != first.id and new.status == DocumentStatus.queued
    admin.wait_until_indexed(new.id, timeout=WAIT)
    old = admin.document(first.id)
    assert (old.status, old.superseded_by) == (DocumentStatus.deleted, new.id)

    admin.delete_document(new.id)
    assert admin.document(new.id).status == DocumentStatus.deleted
    with pytest.raises(NotFound) as missing:
        admin.document("no-such-document")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(NotFound):
        admin.delete_document(new.id)


def test_a_folder_uploads_file_by_file_with_progress(
    admin: Client, corpus: Path, tmp_path: Path
) -> None:
    collection = _collection(admin, "folder")
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "a-note.txt").write_bytes((corpus / NOTE).read_bytes())
    (folder / "sub" / "b-rights.txt").write_bytes(
        (corpus / "text/uns_UDHR_first_article_all.txt").read_bytes()
    )
    (folder / "c-empty.txt").write_bytes(b"")
    (folder / ".hidden.txt").write_text("never sent")
    (folder / "d.txt.part").write_text("still downloading")
    progress: list[UploadProgress] = []

    result = admin.upload_folder(folder, collection=collection, on_progress=progress.append)

    assert [(p.done, p.total, p.path.name) for p in progress] == [
        (1, 3, "a-note.txt"),
        (2, 3, "c-empty.txt"),
        (3, 3, "b-rights.txt"),
    ]
    assert sorted(d.filename for d in result.documents) == ["a-note.txt", "b-rights.txt"]
    [(path, error)] = result.refused
    assert (path.name, error.status, error.code) == ("c-empty.txt", 422, "empty_file")
    listed = admin.documents(collections=[collection])
    assert sorted(d.filename or "" for d in listed.items) == ["a-note.txt", "b-rights.txt"]


def test_a_failed_document_is_retried_and_an_indexed_one_reprocessed(
    admin: Client, corpus: Path
) -> None:
    collection = _collection(admin, "reruns")
    [broken] = admin.upload(corpus / DAMAGED, collection=collection)
    with pytest.raises(IngestFailed) as failed:
        admin.wait_until_indexed(broken.id, timeout=WAIT)
    code = failed.value.code
    assert code and failed.value.document.status == DocumentStatus.failed

    rerun = admin.retry_document(broken.id)
    assert rerun.id == broken.id and rerun.run_id in admin.document(broken.id).run_ids
    with pytest.raises(IngestFailed) as again:
        admin.wait_until_indexed(broken.id, timeout=WAIT)
    assert again.value.code == code
    assert admin.run(rerun.run_id).id == rerun.run_id

    bulk = admin.retry_failed(collection=collection, include_permanent=True)
    assert bulk.documents == [broken.id] and bulk.runs
    with pytest.raises(IngestFailed):
        admin.wait_until_indexed(broken.id, timeout=WAIT)

    [note] = admin.upload(corpus / NOTE, collection=collection)
    before = admin.wait_until_indexed(note.id, timeout=WAIT)
    with pytest.raises(Conflict) as not_failed:
        admin.retry_document(note.id)
    assert not_failed.value.code == "not_failed"
    redo = admin.reprocess(note.id, chunk_size=64, chunk_overlap=8)
    assert redo.first_stage == "document_chunks"
    after = admin.wait_until_indexed(note.id, timeout=WAIT)
    assert redo.run_id in after.run_ids and after.chunks and before.chunks
    assert after.chunks > before.chunks


def test_collections_are_created_listed_changed_and_deleted(admin: Client) -> None:
    name = f"crud-{uuid.uuid4().hex[:6]}"
    made = admin.create_collection(name, description="first", chunk_size=128)
    assert (made.name, made.chunk_size, made.documents) == (name, 128, 0)
    with pytest.raises(Conflict) as exists:
        admin.create_collection(name)
    assert exists.value.code == "collection_exists"
    assert name in [c.name for c in admin.collections()]
    changed = admin.update_collection(name, description="second", chunk_size=None)
    assert (changed.description, changed.chunk_size) == ("second", None)
    assert admin.collection(name).description == "second"
    admin.delete_collection(name)
    assert name not in [c.name for c in admin.collections()]
    with pytest.raises(InvalidRequest) as invalid:
        admin.create_collection("Not A Slug")
    assert invalid.value.code == "invalid_collection_name"


def test_a_collection_switches_model_through_the_daemon_and_warm_worker(
    admin: Client, corpus: Path
) -> None:
    """The switch's backfill, run by the real daemon on the warm worker, ends in the swap."""
    collection = _collection(admin, "switch")
    [doc] = admin.upload(corpus / NOTE, collection=collection)
    admin.wait_until_indexed(doc.id, timeout=WAIT)
    switching = admin.update_collection(collection, embedding_model="hash-256")
    assert switching.model_switch is not None
    assert (switching.model_switch.embedding_model, switching.model_switch.documents_total) == (
        "hash-256",
        1,
    )
    deadline = time.monotonic() + WAIT
    while (now := admin.collection(collection)).model_switch is not None:
        assert not now.model_switch.failed, now.model_switch
        assert time.monotonic() < deadline, now
        time.sleep(0.5)
    assert (now.embedding_model, now.generation) == ("hash-256", 2)
    assert admin.document(doc.id).stages["chunk_embeddings"].metadata["model"] == "hash-256"
    hits = admin.search("Norwich City", k=3, mode="dense", collections=[collection]).results
    assert hits and hits[0].document_id == doc.id
    with pytest.raises(Conflict) as none:
        admin.cancel_model_switch(collection)
    assert none.value.code == "no_model_switch"


def test_keys_scope_what_a_client_sees(admin: Client, client_stack: Stack, corpus: Path) -> None:
    mine = _collection(admin, "mine")
    other = _collection(admin, "other")
    [hidden] = admin.upload(corpus / NOTE, collection=other)
    made = admin.create_key("a reader", Role.reader, [mine])
    assert made.secret and made.id in [k.id for k in admin.api_keys()]
    assert admin.me().role == Role.admin

    with Client(client_stack.url, made.secret) as reader:
        me = reader.me()
        assert (me.id, me.role, me.collections) == (made.id, Role.reader, [mine])
        assert [c.name for c in reader.collections()] == [mine]
        with pytest.raises(NotFound):
            reader.document(hidden.id)
        with pytest.raises(Forbidden) as refused:
            reader.upload(("x.txt", b"a reader may not write"), collection=mine)
        assert refused.value.status == 403
        admin.revoke_key(made.id)
        with pytest.raises(Unauthorized) as revoked:
            reader.me()
        assert revoked.value.code == "unauthorized"
    assert made.id not in [k.id for k in admin.api_keys()]


def test_a_page_is_fetched_by_url_and_a_private_address_refused(
    admin: Client, client_stack: Stack
) -> None:
    collection = _collection(admin, "url")
    page = client_stack.site.url("/corpus/html/readability_mercurial.html")
    uploaded = admin.upload_url(page, collection=collection, metadata={"via": "client"})
    done = admin.wait_until_indexed(uploaded.id, timeout=WAIT)
    assert done.status == DocumentStatus.indexed
    assert done.metadata == {"via": "client", "source_url": page}
    [hit] = admin.search(
        "the art of mutable history", k=1, mode="lexical", collections=[collection]
    ).results
    assert hit.document_id == uploaded.id

    with pytest.raises(InvalidRequest) as refused:
        admin.upload_url("http://10.1.2.3/secret.txt", collection=collection)
    assert refused.value.code == "fetch_refused" and "RAG_FETCH_ALLOW_HOSTS" in str(refused.value)
    assert admin.documents(collections=[collection]).total == 1


def test_errors_carry_the_apis_code(admin: Client) -> None:
    with pytest.raises(InvalidRequest) as bad_filter:
        admin.search("anything", filter={"$nope": 1})
    assert (bad_filter.value.status, bad_filter.value.code) == (422, "invalid_filter")
    with pytest.raises(InvalidRequest) as blank:
        admin.search("")
    assert blank.value.code == "invalid_request" and blank.value.detail
    assert admin.health().status == "ok"


def test_a_wait_gives_up_at_its_timeout(admin: Client, corpus: Path) -> None:
    collection = _collection(admin, "slow")
    book = corpus / "text/gutenberg_pride-and-prejudice_1342-0.txt"
    [doc] = admin.upload(book, collection=collection)
    with pytest.raises(WaitTimeout) as timed_out:
        admin.wait_until_indexed(doc.id, timeout=0.5)
    assert isinstance(timed_out.value, TimeoutError)
    assert admin.wait_until_indexed(doc.id, timeout=WAIT).status == DocumentStatus.indexed


def test_the_async_client_does_the_same(client_stack: Stack, corpus: Path) -> None:
    async def journey() -> None:
        async with AsyncClient(client_stack.url, client_stack.admin_key) as rag:
            collection = f"async-{uuid.uuid4().hex[:6]}"
            await rag.create_collection(collection)
            [doc] = await rag.upload(corpus / NOTE, collection=collection)
            statuses = [d.status async for d in rag.events(doc.id, timeout=WAIT)]
            assert statuses and statuses[-1] == DocumentStatus.indexed, statuses
            assert (await rag.wait_until_indexed(doc.id)).status == DocumentStatus.indexed
            hits = await rag.search("Norwich", k=2, mode="lexical", collections=[collection])
            assert hits.results and hits.results[0].document_id == doc.id
            assert (await rag.chunks(doc.id)).total == (await rag.document(doc.id)).chunks
            with pytest.raises(NotFound):
                await rag.document("no-such-document")

    asyncio.run(journey())
