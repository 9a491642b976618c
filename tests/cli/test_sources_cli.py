"""`rag-pipeline sources`: a web source added, listed, synced, shown and removed from the command
line, against a real HTTP server on loopback (support.web) serving corpus pages; a bucket that
cannot be read is refused as the API refuses it."""

import json
from pathlib import Path

import pytest
from support.runs import ingest_landed, run_cli
from support.web import Site

from rag_pipeline.core.storage.data_dir import DocumentStore

pytest_plugins = ["support.web"]

PAGES = ["html/readability_mercurial.html", "html/trafilatura_docs.docker.com.install.html"]


def test_a_web_source_from_the_command_line(
    instance, rag_env, site: Site, corpus: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("RAG_FETCH_ALLOW_HOSTS", f"127.0.0.1:{site.port}")
    monkeypatch.setenv("RAG_WEB_MIN_INTERVAL_SECONDS", "0")
    store = DocumentStore(rag_env["RAG_DATA_DIR"])
    store.registry.tenancy.create_collection("docs")
    urls = []
    for rel in PAGES:
        site.serve(f"/docs/{Path(rel).name}", (corpus / rel).read_bytes())
        urls.append(site.url(f"/docs/{Path(rel).name}"))

    code, out = run_cli(["sources", "add-web", "docs", *urls])
    assert code == 0, out
    source_id = out.split("\t")[0]
    code, out = run_cli(["sources", "list", "docs"])
    assert code == 0 and out.startswith(source_id) and "never synced" in out, out

    code, out = run_cli(["sources", "sync", "docs", source_id])
    assert code == 0, out
    synced = json.loads(out)
    assert (synced["seen"], synced["added"], synced["failed"]) == (2, 2, 0), synced
    assert sorted(ingest_landed(instance, rag_env["RAG_DATA_DIR"])) == sorted(synced["documents"])
    statuses = {store.registry.reads.get(d).status for d in synced["documents"]}
    assert statuses == {"indexed"}

    # A page gone for two syncs in a row is retired, and the source says so.
    site.fail(f"/docs/{Path(PAGES[1]).name}", 404)
    for _ in range(2):
        code, out = run_cli(["sources", "sync", "docs", source_id])
        assert code == 0, out
    assert json.loads(out)["retired"] == 1
    code, out = run_cli(["sources", "show", "docs", source_id])
    shown = json.loads(out)
    assert (shown["type"], shown["urls"], shown["last_counts"]["retired"]) == ("web", urls, 1)
    assert shown["last_sync_at"] is not None and shown["last_error"] is None

    kept = {d: store.registry.reads.get(d).status for d in synced["documents"]}
    assert sorted(kept.values()) == ["deleted", "indexed"], kept
    code, out = run_cli(["sources", "remove", "docs", source_id])
    assert code == 0 and "its documents stay" in out
    assert run_cli(["sources", "list", "docs"]) == (0, "")
    assert {d: store.registry.reads.get(d).status for d in synced["documents"]} == kept

    # Refusals: exit 1 and the reason on stderr, nothing created.
    capsys.readouterr()
    assert run_cli(["sources", "show", "docs", source_id])[0] == 1
    assert f"no source {source_id!r}" in capsys.readouterr().err
    assert run_cli(["sources", "add-web", "nowhere", urls[0]])[0] == 1
    assert "no collection named 'nowhere'" in capsys.readouterr().err
    assert run_cli(["sources", "add-web", "docs", "ftp://example.org/x"])[0] == 1
    assert "ftp://example.org/x" in capsys.readouterr().err
    unreadable = ["sources", "add-s3", "docs", "no-such-bucket"]
    assert run_cli([*unreadable, "--endpoint-url", f"http://127.0.0.1:{site.port}"])[0] == 1
    assert "no-such-bucket" in capsys.readouterr().err
    assert run_cli(["sources", "list", "docs"]) == (0, "")


@pytest.mark.parametrize("verb", ["list", "show", "sync", "remove"])
def test_every_verb_names_its_collection(verb: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(["sources", verb])
    assert exit_.value.code == 2
