"""POST /documents: uploads land whole or not at all, duplicates are found, names are tamed.

Ingestion is driven in process (sensor tick + range run) so these stay fast; the end-to-end
test with the real daemon and model is test_api_e2e.py.
"""

import itertools
import json
from pathlib import Path

import pytest
from support.api import assert_error, assert_nothing_kept, upload
from support.runs import ingest_landed

from rag_pipeline.core.stages.chunking import load_tokenizer
from rag_pipeline.core.stages.embedders import bundled_model_dir
from rag_pipeline.core.storage.catalog import Catalog
from rag_pipeline.core.storage.data_dir import DocumentStore

pytest_plugins = ["support.api"]


def test_upload_is_queued_then_indexed_and_searchable(
    client, instance, settings, corpus: Path
) -> None:
    response = client.post("/documents", files=[upload(corpus, "text/uns_norwich-city.txt")])

    assert response.status_code == 202
    [doc] = response.json()["documents"]
    assert doc["status"] == "queued" and doc["duplicate"] is False
    assert response.headers["location"] == doc["status_url"] == f"/documents/{doc['id']}"
    assert client.get(doc["status_url"]).json()["status"] == "queued"

    ingest_landed(instance, str(settings.data_dir))

    status = client.get(doc["status_url"]).json()
    assert status["status"] == "indexed"
    assert status["chunks"] > 0 and status["run_ids"]
    assert status["stages"]["vector_index"]["state"] == "materialized"
    hits = client.get("/search", params={"q": "Norwich City Football Club", "k": 3}).json()
    assert hits["results"][0]["document_id"] == doc["id"]
    assert set(hits["results"][0]) >= {
        "document_id",
        "filename",
        "page",
        "score",
        "text",
        "char_start",
        "char_end",
    }


def test_several_files_and_per_document_chunk_options(
    client, instance, settings, corpus: Path
) -> None:
    response = client.post(
        "/documents",
        files=[
            upload(corpus, "text/uns_norwich-city.txt"),
            upload(corpus, "markdown/plumber_README.md"),
        ],
        data={"chunk_size": "64", "chunk_overlap": "8"},
    )
    assert response.status_code == 202
    ids = [d["id"] for d in response.json()["documents"]]

    ingest_landed(instance, str(settings.data_dir))

    tokenizer = load_tokenizer(str(bundled_model_dir() / "tokenizer.json"))
    catalog = Catalog(DocumentStore(settings.data_dir))
    for doc_id in ids:
        assert client.get(f"/documents/{doc_id}").json()["status"] == "indexed"
        # Measured on the chunks themselves, recounted with the model's tokenizer: the default
        # chunk size (200) would make chunks well over 64 tokens from these files.
        _, rows = catalog.query(
            "SELECT char_start, char_end, text FROM chunks WHERE document_id = ? ORDER BY chunk_no",
            [doc_id],
        )
        sizes = [len(tokenizer.encode(text, add_special_tokens=False).ids) for *_, text in rows]
        assert 48 < max(sizes) <= 64, sizes
        overlaps = []
        for (_, prev_end, prev_text), (start, _, text) in itertools.pairwise(rows):
            shared = prev_text[len(prev_text) - max(prev_end - start, 0) :]
            assert text.startswith(shared)
            overlaps.append(len(tokenizer.encode(shared, add_special_tokens=False).ids))
        # The last chunk may reach further back: a short tail is never a chunk of its own.
        assert 0 < max(overlaps[:-1]) <= 8, overlaps


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"chunk_size": "0"}, "chunk_size"),
        ({"chunk_size": "999"}, "chunk_size"),
        ({"chunk_size": "50", "chunk_overlap": "50"}, "chunk_overlap"),
        ({"chunk_size": "abc"}, "chunk_size"),
    ],
)
def test_bad_chunk_options_are_refused(client, corpus: Path, data: dict, field: str) -> None:
    response = client.post(
        "/documents", files=[upload(corpus, "markdown/haystack_sample.md")], data=data
    )
    # Range errors come from our own check, type errors from request validation.
    body = assert_error(
        response, 422, "invalid_request" if data.get("chunk_size") == "abc" else "invalid_options"
    )
    assert field in json.dumps(body)


def test_bad_input_gets_the_right_status(client, settings, corpus: Path) -> None:
    assert_error(
        client.post("/documents", files=[upload(corpus, "text/uns_empty.txt")]), 422, "empty_file"
    )
    assert_error(
        client.post("/documents", files=[upload(corpus, "text/uns_fake-text-all-whitespace.txt")]),
        422,
        "empty_file",
    )
    gif = ("file", ("scan.pdf", b"GIF89a" + bytes(range(256)) * 8))  # images but GIF are read
    assert_error(client.post("/documents", files=[gif]), 415, "unsupported_type")
    big = ("file", ("big.txt", b"word " * 60_000))  # 300 KB > 0.25 MB
    assert_error(client.post("/documents", files=[big]), 413, "payload_too_large")
    assert_error(client.post("/documents"), 422, "invalid_request")
    assert_error(
        client.post(
            "/documents",
            content=b"--x\r\nnot multipart",
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        400,
        "bad_request",
    )
    # Nothing from a refused request reaches the store or the registry.
    assert_nothing_kept(settings)


def test_one_bad_file_refuses_the_whole_request(client, settings, corpus: Path) -> None:
    response = client.post(
        "/documents",
        files=[upload(corpus, "markdown/haystack_sample.md"), upload(corpus, "text/uns_empty.txt")],
    )
    assert_error(response, 422, "empty_file")
    assert_nothing_kept(settings)


def test_identical_content_is_a_duplicate(client, instance, settings, corpus: Path) -> None:
    first = client.post("/documents", files=[upload(corpus, "markdown/haystack_sample.md")]).json()[
        "documents"
    ][0]
    queued_again = client.post("/documents", files=[upload(corpus, "markdown/haystack_sample.md")])
    assert (
        queued_again.status_code == 200 and queued_again.json()["documents"][0]["id"] == first["id"]
    )
    ingest_landed(instance, str(settings.data_dir))

    again = client.post(
        "/documents", files=[upload(corpus, "markdown/haystack_sample.md", "renamed.md")]
    )

    assert again.status_code == 200
    [doc] = again.json()["documents"]
    assert doc == {**doc, "id": first["id"], "duplicate": True}


def test_an_upload_cut_off_by_a_crash_is_accepted_again(
    client, instance, settings, corpus: Path
) -> None:
    """Killed between writing the upload's bytes and registering them, the API never answered;
    the client's retry must deliver the file, not be told it is a duplicate of nothing."""
    from rag_pipeline.core.storage.data_dir import DocumentStore, document_id, sha256_bytes

    store = DocumentStore(settings.data_dir)
    data = (corpus / "markdown/haystack_sample.md").read_bytes()
    cut_id = document_id("haystack_sample.md", sha256_bytes(data))
    copy = store.keep_incoming(cut_id, "haystack_sample.md", data)  # the row never committed
    assert client.get(f"/documents/{cut_id}").status_code == 404

    retry = client.post("/documents", files=[upload(corpus, "markdown/haystack_sample.md")])
    assert retry.status_code == 202, retry.text
    [doc] = retry.json()["documents"]
    assert doc["id"] == cut_id and not doc["duplicate"]
    assert copy.read_bytes() == data
    ingest_landed(instance, str(settings.data_dir))
    assert client.get(f"/documents/{doc['id']}").json()["status"] == "indexed"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.txt",
        "/tmp/absolute.md",
        "..\\..\\windows.txt",
        "a" * 300 + ".md",
        "\u202egnp.md",
        "résumé 履歴書.md",
        "nul\x00byte.md",
        "..",
        "",
    ],
)
def test_hostile_file_names_stay_inside_the_upload_folder(
    client, settings, tmp_path: Path, name: str
) -> None:
    client.get("/documents")  # the registry's own files exist before the upload
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    response = client.post(
        "/documents", files=[("file", (name, b"# Title\n\nSome real text here.\n"))]
    )
    assert response.status_code in (202, 422), response.text
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    written -= {p for p in written if p.parent == settings.data_dir and "registry" in p.name}
    incoming = (settings.data_dir / "incoming").resolve()
    assert len(written) == (1 if response.status_code == 202 else 0), written
    for path in written:
        # incoming/<document id>/<the name made safe>
        assert path.resolve().parent.parent == incoming, path
        assert len(path.name.encode()) <= 255
    if response.status_code == 202:
        doc = response.json()["documents"][0]
        assert "/" not in doc["filename"] and "\x00" not in doc["filename"]
        assert client.get(doc["status_url"]).json()["status"] == "queued"


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0und") -> list[bytes]:
    out = []
    for name, data in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
        out.append(f"{head}\r\nContent-Type: text/plain\r\n\r\n".encode() + data + b"\r\n")
    return [*out, f"--{boundary}--\r\n".encode()]


def test_the_request_body_is_limited_as_it_streams_in(client, settings) -> None:
    """Files each under the per-file limit, together over the request limit (the per-file
    limit plus 1 MB), sent without Content-Length: refused before anything lands."""
    file_bytes = settings.max_upload_bytes - 1024
    count = (settings.max_upload_bytes + 1024 * 1024) // file_bytes + 1
    parts = [(f"part-{i}.txt", b"word %d " % i * (file_bytes // 8)) for i in range(count)]
    chunks = _multipart(parts)
    headers = {"content-type": "multipart/form-data; boundary=b0und"}

    chunked = client.post("/documents", content=iter(chunks), headers=headers)
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, "payload_too_large")
    declared = client.post("/documents", content=b"".join(chunks), headers=headers)
    assert_error(declared, 413, "payload_too_large")
    assert_nothing_kept(settings)

    # The same framing under the limit is accepted: the refusal was for size alone.
    accepted = client.post("/documents", content=iter(_multipart(parts[:2])), headers=headers)
    assert accepted.status_code == 202, accepted.text
