"""Web search run by the gateway, for providers that cannot search (Chat Completions servers,
the local model), against a configured backend (`web_search:` in the config; SearXNG first).

The model is offered a `web_search` function. Its calls never reach the client as function
calls: each becomes a `web_search_call` item with OpenAI's events, and runs when the model's
turn ends (see `engine.tools.rounds`). A backend is one small class with `search(query)`.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

import aiohttp
import orjson

from rejoinder.protocol.tools import FunctionTool
from rejoinder.providers.http import session

log = logging.getLogger("rejoinder.search")

TOOL_NAME = "web_search"
TOOL = FunctionTool(
    TOOL_NAME,
    "Search the web. Returns the top results (title, URL and a snippet) for the query.",
    {"type": "object", "properties": {"query": {"type": "string", "description": "What to search for."}}, "required": ["query"]},
)


class Result(NamedTuple):
    url: str
    title: str
    snippet: str


class Backend(Protocol):
    async def search(self, query: str) -> list[Result]: ...


class SearXNG:
    """A SearXNG instance's JSON API (`GET /search?q=…&format=json`; its settings must enable
    the json format)."""

    def __init__(self, url: str, max_results: int, timeout: float) -> None:
        self.url = url.rstrip("/") + "/search"
        self.max_results = max_results
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def search(self, query: str) -> list[Result]:
        async with session().get(self.url, params={"q": query, "format": "json"}, timeout=self.timeout) as reply:
            reply.raise_for_status()
            found = orjson.loads(await reply.read())
        results = found.get("results") if isinstance(found, dict) else None
        return [
            Result(r["url"], str(r.get("title") or r["url"]), str(r.get("content") or ""))
            for r in results or ()
            if isinstance(r, dict) and isinstance(r.get("url"), str)
        ][: self.max_results]


async def search(backend: Backend, query: str) -> list[Result] | None:
    """The results for `query` (none for no query); None when the search failed."""
    try:
        return await backend.search(query) if query else []
    except Exception as exc:  # the model is told the search failed, and goes on
        log.warning("web search failed: %s", type(exc).__name__)
        return None
