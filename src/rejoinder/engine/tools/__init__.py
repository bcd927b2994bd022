"""Tools the gateway runs itself, on providers that cannot: web search (`searching`), file
search over the project's vector stores (`file_search`) and MCP (`mcp`), and the rounds of calls and further model turns they make within one response
(`rounds`)."""

from rejoinder.engine.tools import file_search, mcp
from rejoinder.engine.tools.rounds import Round
from rejoinder.engine.tools.searching import TOOL, TOOL_NAME, Backend, SearXNG

__all__ = ["TOOL", "TOOL_NAME", "Backend", "Round", "SearXNG", "file_search", "mcp"]
