"""MCP tools the gateway runs, with the official `mcp` SDK: what a request offers and approves,
listing and calling (`client`), the items that show them (`views`), sessions held open
(`sessions`), the address guard (`guard`) and the tool filters (`filters`)."""

from rejoinder.engine.tools.mcp.client import McpAccess, Prepared, Sessions, call, prepare
from rejoinder.engine.tools.mcp.sessions import stdio_servers
from rejoinder.engine.tools.mcp.views import as_functions, listing, protocol_error, ran_deltas, told

__all__ = ["McpAccess", "Prepared", "Sessions", "as_functions", "call", "listing", "prepare", "protocol_error", "ran_deltas", "stdio_servers", "told"]
