"""/mcp in the API: the MCP server over streamable HTTP, behind the REST key check."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rag_api.deps import PrincipalDep
from rag_api.mcp.server import RagMcp


class _HandOff(Response):
    """Hands the request, body unread, to the MCP transport, which answers it."""

    def __init__(self, server: RagMcp) -> None:
        super().__init__()
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI, server: RagMcp) -> None:
    """Serve `server` at /mcp. The route depends on the REST key check itself, so a missing or
    unknown key is the same 401, in the same error shape, before MCP sees the request."""
    server.streamable_http_app()  # creates the session manager the route hands off to

    async def mcp_endpoint(_: PrincipalDep) -> Response:
        return _HandOff(server)

    app.add_api_route(
        "/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False
    )


@asynccontextmanager
async def running(server: RagMcp) -> AsyncIterator[None]:
    """The transport's task group, for the app's lifespan."""
    async with server.session_manager.run():
        yield
