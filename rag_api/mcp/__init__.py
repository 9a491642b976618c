"""The MCP server: streamable HTTP at /mcp in the API (http.py), and stdio (stdio.py)."""
