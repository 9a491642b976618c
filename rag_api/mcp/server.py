"""The MCP server: tools and a resource for agents, answered by the API's own routes.

Every tool calls the REST route in-process with the caller's key, so roles, collection scopes
and errors are REST's by construction: a key scoped to one collection sees only it here too,
and a refusal is the REST error body, returned as the tool's error.
"""

import base64
import binascii
import json
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from rag_api.errors import error_body
from rag_api.schemas import (
    FILTER_HELP,
    SEARCH_MODE_HELP,
    ChunkPage,
    CollectionOut,
    DocumentOut,
    DocumentPage,
    SearchResponse,
    UploadedDocument,
)
from rag_pipeline.core.documents.reports import DocumentStatus
from rag_pipeline.core.retrieval.search import SearchMode
from rag_pipeline.core.storage.catalog import read_text_pages
from rag_pipeline.core.storage.data_dir import DocumentStore
from rag_pipeline.settings import Settings

INSTRUCTIONS = (
    "Search and manage the documents of a RAG ingestion service. Search returns chunks that "
    "cite their document id, filename, page and character offsets; get_chunks widens a hit's "
    "context; add_document queues a document for ingestion, and get_document follows it."
)

# Bare, not Context[...]: a resource's arguments are validated, and a parametrized Context
# would arrive as a copy without the request.
Ctx = Context


class RestError(Exception):
    """An error answer of the API: the tool's error carries the same body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.body = body


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class DocumentText(BaseModel):
    document_id: str
    pages: list[dict[str, Any]] = Field(description="each page's number and extracted text")


class RagMcp(FastMCP):
    """FastMCP whose tool errors are the API's error body, as text and as structured content."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, RestError):
                body = cause.body
            elif isinstance(cause, ValidationError):
                # As REST answers a request that fails validation (rag_api/errors.py).
                detail = [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in cause.errors()
                ]
                body = error_body("invalid_request", "the request is not valid", detail)
            else:
                raise
            return CallToolResult(
                content=[TextContent(type="text", text=json.dumps(body))],
                structuredContent=body,
                isError=True,
            )


class Api:
    """The app's routes, called in-process (no socket), as the caller."""

    def __init__(self, app: FastAPI) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rag-api", timeout=None
        )

    async def call(self, authorization: str | None, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": authorization} if authorization else {}
        response = await self._client.request(method, path, headers=headers, **kw)
        if response.status_code >= 400:
            raise RestError(response.json())
        return response.json() if response.content else None


def _segment(value: str) -> str:
    return quote(value, safe="")


def build_server(app: FastAPI, settings: Settings, api_key: str | None = None) -> RagMcp:
    """The server for `app`. With `api_key` (stdio) every call acts as that key; without, as
    the key of the HTTP request that carries the call."""
    api = Api(app)
    server = RagMcp(
        "rag-ingest",
        instructions=INSTRUCTIONS,
        # Mounted at /mcp by the app itself (rag_api/mcp/http.py).
        streamable_http_path="/",
        # No session between requests: any API worker answers any call, and a restart loses
        # nothing a client holds.
        stateless_http=True,
        json_response=True,
        # The Host allow-list FastMCP sets for loopback would refuse the API under any other
        # name (a container's, a proxy's). /mcp is guarded as REST is: by the bearer key.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    def authorization(ctx: Ctx) -> str | None:
        if api_key is not None:
            return f"Bearer {api_key}"
        request = ctx.request_context.request
        header: str | None = request.headers.get("authorization") if request else None
        return header

    tool = server.tool(structured_output=True)

    @tool
    async def search(
        ctx: Ctx,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="the question")],
        k: Annotated[int, Field(ge=1, le=100, description="how many chunks")] = 5,
        mode: Annotated[SearchMode, Field(description=SEARCH_MODE_HELP)] = SearchMode.HYBRID,
        collections: Annotated[
            list[str] | None, Field(description="only these collections (default: all visible)")
        ] = None,
        filter: Annotated[dict[str, Any] | None, Field(description=FILTER_HELP)] = None,
    ) -> SearchResponse:
        """Find the chunks that best answer a query; each hit cites its document id, filename,
        page and character offsets."""
        body = {"q": query, "k": k, "mode": mode, "collections": collections, "filter": filter}
        return SearchResponse.model_validate(
            await api.call(authorization(ctx), "POST", "/search", json=body)
        )

    @tool
    async def list_collections(ctx: Ctx) -> CollectionList:
        """List the collections this key may read, with their document counts by status."""
        found = await api.call(authorization(ctx), "GET", "/collections")
        return CollectionList(collections=found)

    @tool
    async def list_documents(
        ctx: Ctx,
        collection: Annotated[str | None, Field(description="only this collection")] = None,
        status: Annotated[DocumentStatus | None, Field(description="only this status")] = None,
        filter: Annotated[dict[str, Any] | None, Field(description=FILTER_HELP)] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="page size")] = 50,
        offset: Annotated[int, Field(ge=0, description="documents to skip")] = 0,
    ) -> DocumentPage:
        """List documents in arrival order, by collection, status or metadata filter, a page at
        a time (total counts every match)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if collection is not None:
            params["collection"] = collection
        if status is not None:
            params["status"] = status.value
        if filter is not None:
            params["filter"] = json.dumps(filter)
        found = await api.call(authorization(ctx), "GET", "/documents", params=params)
        return DocumentPage.model_validate(found)

    @tool
    async def get_document(
        ctx: Ctx, document_id: Annotated[str, Field(description="the document's id")]
    ) -> DocumentOut:
        """Read one document's status (queued, processing, indexed, failed...), stages, error
        and metadata."""
        path = f"/documents/{_segment(document_id)}"
        return DocumentOut.model_validate(await api.call(authorization(ctx), "GET", path))

    @tool
    async def get_chunks(
        ctx: Ctx,
        document_id: Annotated[str, Field(description="the document's id")],
        chunk_no: Annotated[int, Field(ge=0, description="the chunk to centre on")] = 0,
        before: Annotated[int, Field(ge=0, le=50, description="chunks before it")] = 2,
        after: Annotated[int, Field(ge=0, le=50, description="chunks after it")] = 2,
    ) -> ChunkPage:
        """Read a document's chunks around one chunk (a search hit's chunk_no), in order, to
        widen a hit's context."""
        start = max(0, chunk_no - before)
        params = {"offset": start, "limit": chunk_no - start + after + 1}
        path = f"/documents/{_segment(document_id)}/chunks"
        found = await api.call(authorization(ctx), "GET", path, params=params)
        return ChunkPage.model_validate(found)

    @tool
    async def add_document(
        ctx: Ctx,
        filename: Annotated[str, Field(min_length=1, description="its name, with extension")],
        text: Annotated[str | None, Field(description="the content, as text")] = None,
        content_base64: Annotated[
            str | None, Field(description="the content as base64 bytes (PDF, DOCX...)")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="strings, numbers, booleans, string lists")
        ] = None,
        collection: Annotated[str, Field(description="the collection it goes into")] = "default",
    ) -> UploadedDocument:
        """Queue a document for ingestion (writer keys only), from text or base64 bytes;
        returns its id and status, which get_document follows."""
        if (text is None) == (content_base64 is None):
            raise RestError(
                error_body("invalid_request", "give exactly one of text and content_base64")
            )
        try:
            data = text.encode() if text is not None else base64.b64decode(content_base64 or "")
        except binascii.Error as exc:
            raise RestError(error_body("invalid_request", f"content_base64: {exc}")) from exc
        form = {"metadata": json.dumps(metadata)} if metadata else {}
        answer = await api.call(
            authorization(ctx),
            "POST",
            f"/collections/{_segment(collection)}/documents",
            files=[("file", (filename, data))],
            data=form,
        )
        return UploadedDocument.model_validate(answer["documents"][0])

    @tool
    async def delete_document(
        ctx: Ctx, document_id: Annotated[str, Field(description="the document's id")]
    ) -> Deleted:
        """Delete a document: its vectors, artifacts and bytes (writer keys only)."""
        await api.call(authorization(ctx), "DELETE", f"/documents/{_segment(document_id)}")
        return Deleted(id=document_id)

    @server.resource(
        "document://{document_id}",
        name="document",
        description="A document's extracted text, page by page.",
        mime_type="application/json",
    )
    async def document_text(document_id: str, ctx: Ctx) -> str:
        # The REST read scopes it: another collection's id is not found, as through REST.
        await api.call(authorization(ctx), "GET", f"/documents/{_segment(document_id)}")
        store = DocumentStore(settings.data_dir, settings.registry_url or None)
        pages = [{"page": n, "text": t} for n, t in read_text_pages(store, document_id)]
        return DocumentText(document_id=document_id, pages=pages).model_dump_json()

    return server
