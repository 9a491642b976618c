"""`rag-pipeline mcp`: the MCP server over stdio, for desktop agents, acting as one key.

The app runs in this process (its lifespan opens the instance, the index and the model), and
the tools call its routes in-process, exactly as over HTTP.
"""

import os
import sys
from io import TextIOWrapper
from typing import Any

import anyio

from rag_api.main import create_app
from rag_api.mcp.server import build_server
from rag_pipeline.settings import Settings


def serve(settings: Settings, api_key: str | None, instance: Any) -> None:
    """Serve MCP on stdin/stdout until stdin closes."""
    # The protocol owns stdout. Whatever else writes to file descriptor 1 (a library's print,
    # the extraction sandbox's children, which inherit it) goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    anyio.run(_serve, settings, api_key, instance, protocol)


async def _serve(settings: Settings, api_key: str | None, instance: Any, protocol: Any) -> None:
    from mcp.server.stdio import stdio_server

    app = create_app(settings, instance)
    server = build_server(app, settings, api_key)
    lowlevel = server._mcp_server  # FastMCP's own stdio runner would take sys.stdout
    stdin = anyio.wrap_file(TextIOWrapper(sys.stdin.buffer, encoding="utf-8"))
    stdout = anyio.wrap_file(TextIOWrapper(protocol, encoding="utf-8"))
    async with (
        app.router.lifespan_context(app),
        stdio_server(stdin, stdout) as (read, write),
    ):
        await lowlevel.run(read, write, lowlevel.create_initialization_options())
