"""Web search run by the provider itself (Anthropic's server-side `web_search` tool, Gemini's
Google Search grounding), shown as OpenAI shows its own: a `web_search_call` item with its
`response.web_search_call.*` events, and `url_citation` annotations on the text.

A call's `action.sources` are kept only when the request includes
`web_search_call.action.sources`, as OpenAI does.
"""

from __future__ import annotations

from typing import Any

import orjson

from rejoinder.protocol.ids import new_id
from rejoinder.protocol.tools import WEB_SEARCH_TOOL_TYPES
from rejoinder.providers.base import Annotation, Delta, HostedEvent, HostedOutput, HostedStart

SOURCES = "web_search_call.action.sources"
HOSTED_TOOL_TYPES = WEB_SEARCH_TOOL_TYPES  # the hosted tools a provider with its own search can run


def wants_search(hosted_tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The request's web search tool, if it offers one."""
    return next((tool for tool in hosted_tools if tool.get("type") in WEB_SEARCH_TOOL_TYPES), None)


def anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's web search tool as Anthropic's server tool."""
    declared: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
    domains = (tool.get("filters") or {}).get("allowed_domains")
    if domains:
        declared["allowed_domains"] = domains
    location = tool.get("user_location") or {}
    place = {key: location[key] for key in ("city", "region", "country", "timezone") if location.get(key)}
    if place:
        declared["user_location"] = {"type": "approximate", **place}
    return declared


class Searches:
    """The web search calls of one turn: each started when the provider starts it, ended when
    its results come (all at once for a provider that reports its searches at the end)."""

    def __init__(self, include: list[str]) -> None:
        self.with_sources = SOURCES in include
        self.items: dict[str, dict[str, Any]] = {}  # the provider's id for a search → its item

    def start(self, key: str) -> list[Delta]:
        item = {"id": new_id("ws"), "type": "web_search_call", "status": "in_progress", "action": {"type": "search"}}
        self.items[key] = item
        return [HostedStart(dict(item)), self._event("in_progress", item), self._event("searching", item)]

    def end(self, key: str, queries: list[str], urls: list[str], failed: bool = False) -> list[Delta]:
        """The search `key` is done (started now if it was not): its queries and the URLs it found."""
        started = [] if key in self.items else self.start(key)
        item = self.items.pop(key)
        action: dict[str, Any] = {"type": "search", "queries": queries}
        if queries:
            action["query"] = queries[0]
        if self.with_sources:
            action["sources"] = [{"type": "url", "url": url} for url in dict.fromkeys(urls)]
        item = {**item, "status": "failed" if failed else "completed", "action": action}
        return [*started, self._event("completed", item), HostedOutput(item)]

    @staticmethod
    def _event(stage: str, item: dict[str, Any]) -> HostedEvent:
        return HostedEvent(f"response.web_search_call.{stage}", item["id"], {})


def query_of(arguments: str) -> str:
    """A search call's query, from its JSON arguments as streamed (anything unreadable: none)."""
    try:
        found = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return ""
    query = found.get("query") if isinstance(found, dict) else None
    return query if isinstance(query, str) else ""


def citation(block: str, url: str, title: str, start: int, end: int) -> Annotation:
    return Annotation(block, {"type": "url_citation", "url": url, "title": title or url, "start_index": start, "end_index": end})
