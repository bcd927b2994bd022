"""Web search run by the gateway, for providers that cannot search (Chat Completions servers,
the local model), against a configured backend (`web_search:` in the config; SearXNG first).

The model is offered a `web_search` function. Its calls never reach the client as function
calls: each becomes a `web_search_call` item with OpenAI's events; when the model's turn ends,
the gateway searches, gives the model the results as the function's output and calls it again,
in the same response, until it answers without searching (or `MAX_ROUNDS` is reached). A
backend is one small class with `search(query)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple, Protocol

import aiohttp
import orjson

from rejoinder.protocol.items import FunctionCall, FunctionCallOutput
from rejoinder.protocol.tools import FunctionTool
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, Usage
from rejoinder.providers.http import session
from rejoinder.providers.web_search import Searches

log = logging.getLogger("rejoinder.search")

TOOL_NAME = "web_search"
MAX_ROUNDS = 5  # model turns that may search within one response
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


class Round:
    """One model turn's searches: the calls of the offered function, kept from the builder (it
    sees `web_search_call` items instead) and answered by the backend when the turn ends."""

    def __init__(self, searches: Searches) -> None:
        self.searches = searches
        self.calls: dict[str, list[str]] = {}  # block → [call id, argument chunks…]
        self.ended: list[tuple[str, str]] = []  # (call id, arguments) of the calls made whole

    def filter(self, delta: Delta) -> list[Delta]:
        """What the builder sees of a delta: a search call's pieces become its item's progress."""
        if isinstance(delta, BlockStart) and delta.kind == "tool_call" and delta.name == TOOL_NAME:
            self.calls[delta.block] = [delta.call_id]
            return self.searches.start(delta.call_id)
        if isinstance(delta, BlockDelta) and delta.block in self.calls:
            self.calls[delta.block].append(delta.text)
            return []
        if isinstance(delta, BlockEnd) and delta.block in self.calls:
            call_id, *chunks = self.calls.pop(delta.block)
            self.ended.append((call_id, "".join(chunks)))
            return []
        return [delta]

    def done(self) -> bool:
        """The turn has ended: whether it made search calls (those a provider left open too)."""
        for call_id, *chunks in self.calls.values():
            self.ended.append((call_id, "".join(chunks)))
        self.calls.clear()
        return bool(self.ended)

    def give_up(self) -> list[Delta]:
        """The searches of a turn past `MAX_ROUNDS`: ended as failed, unrun."""
        deltas = [delta for call_id, arguments in self.ended for delta in self.searches.end(call_id, [_query(arguments)], [], failed=True)]
        self.ended = []
        return deltas

    async def answer(self, backend: Backend) -> tuple[list[Delta], list[Any]]:
        """Search for every call (at once): the deltas that end their items, and the items the
        model's next turn adds (each call and its output)."""
        queries = [_query(arguments) for _, arguments in self.ended]
        found = await asyncio.gather(*(_search(backend, query) for query in queries))
        deltas: list[Delta] = []
        items: list[Any] = []
        for (call_id, arguments), query, results in zip(self.ended, queries, found, strict=True):
            deltas += self.searches.end(call_id, [query] if query else [], [r.url for r in results or ()], failed=results is None)
            output = "\n\n".join(f"{r.title}\n{r.url}\n{r.snippet}" for r in results) if results else ("No results." if results == [] else "The search failed.")
            items += [FunctionCall(call_id, TOOL_NAME, arguments or "{}"), FunctionCallOutput(call_id, output)]
        self.ended = []
        return deltas, items


async def _search(backend: Backend, query: str) -> list[Result] | None:
    try:
        return await backend.search(query) if query else []
    except Exception as exc:  # the model is told the search failed, and goes on
        log.warning("web search failed: %s", type(exc).__name__)
        return None


def _query(arguments: str) -> str:
    try:
        found = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return ""
    query = found.get("query") if isinstance(found, dict) else None
    return query if isinstance(query, str) else ""


def added(total: Usage, more: Usage | None) -> Usage:
    """Usage over several model turns of one response."""
    if more is None:
        return total
    return Usage(*(getattr(total, name) + getattr(more, name) for name in Usage.__struct_fields__))


def summed(finish: Finish, earlier: Usage) -> Finish:
    return Finish(finish.reason, added(earlier, finish.usage))
