"""Tools the gateway runs itself, on providers that cannot: web search (`searching`) and MCP
(`mcp`), and the rounds of calls and further model turns they make within one response
(`rounds`)."""

from rejoinder.engine.tools import mcp
from rejoinder.engine.tools.rounds import Round
from rejoinder.engine.tools.searching import TOOL, TOOL_NAME, Backend, SearXNG

__all__ = ["TOOL", "TOOL_NAME", "Backend", "Round", "SearXNG", "mcp"]
