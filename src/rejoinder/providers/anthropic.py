"""Anthropic's Messages API (`POST {base_url}/messages`), streaming and not. The request body is
`providers.anthropic_body`'s; structured output comes back from its tool as plain `output_text`.

Back: `text`, `tool_use` and `thinking` blocks become text, tool-call and reasoning-summary
blocks; a thinking block's signature (and any `redacted_thinking`) is sealed into the reasoning
item's `encrypted_content` and replayed on the next turn, so tool use with thinking works.

Web search is Anthropic's own server tool: its `server_tool_use` and `web_search_tool_result`
blocks become a `web_search_call` item, and the text's citations `url_citation` annotations
(see `providers.web_search`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from rejoinder.providers import web_search
from rejoinder.providers.anthropic_body import COUNTED, messages_body
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, ReasoningEnd, Usage
from rejoinder.providers.failures import read_json, stream_error
from rejoinder.providers.http import EndsWithAnEvent, Upstream, UpstreamLimits, versioned
from rejoinder.providers.state import seal
from rejoinder.providers.web_search import Searches, citation, query_of

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
VERSION = "2023-06-01"
_STOP = {"max_tokens": "length", "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}


class Anthropic:
    hosted_tool_types = web_search.HOSTED_TOOL_TYPES

    def __init__(self, base_url: str | None, api_key: str | None, limits: UpstreamLimits, caching: str = "auto") -> None:
        self.url = versioned(base_url or DEFAULT_BASE_URL, "v1") + "/messages"
        self.caching = caching  # the model's `prompt_caching` (see `providers.anthropic_cache`)
        self.api_key = api_key
        headers = {"Content-Type": "application/json", "anthropic-version": VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self.upstream = Upstream(headers, api_key, limits)

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        body, format_tool = messages_body(request, self.caching)
        async with self.upstream.call(self.url, orjson.dumps(body), request.stream) as reply:
            translator = _Translator(format_tool, Searches(request.settings.include))
            if not request.stream:
                yield translator.message(read_json(await reply.body()))
                return
            async for deltas in reply.deltas(lambda data: translator.event(read_json(data), self.api_key), translator):
                yield deltas

    async def count_tokens(self, request: ModelRequest) -> int:
        """Anthropic's own count (`/v1/messages/count_tokens`) of the request as it would go."""
        body, _ = messages_body(request, "off")
        return await self.upstream.count(self.url + "/count_tokens", {key: body[key] for key in COUNTED if key in body}, "input_tokens")


class _Translator(EndsWithAnEvent):
    """Messages API content blocks → deltas, keyed by the block's `index`."""

    def __init__(self, format_tool: str | None, searches: Searches) -> None:
        self.format_tool = format_tool
        self.searches = searches
        self.blocks: dict[int, dict[str, Any]] = {}  # index → {"kind", "text" chunks, "signature", …}
        self.usage = Usage()
        self.stop = "stop"
        self.called_tool = False
        self.queries: dict[str, list[str]] = {}  # a search's id → its query, once its block ended

    def event(self, event: dict[str, Any], secret: str | None) -> list[Delta]:
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event["index"], event["delta"])
        if kind == "content_block_start":
            return self._start(event["index"], event["content_block"])
        if kind == "content_block_stop":
            return self._stop(event["index"])
        if kind == "message_start":
            self._usage(event["message"].get("usage") or {})
        elif kind == "message_delta":
            self._usage(event.get("usage") or {})
            self.stop = _STOP.get(event.get("delta", {}).get("stop_reason") or "", "stop")
        elif kind == "message_stop":
            self.done = True
            return [self._finish()]
        elif kind == "error":
            raise stream_error(event, secret)
        return []  # ping, and event types this gateway does not use

    def message(self, message: dict[str, Any]) -> list[Delta]:
        """A non-streaming reply, read as the same start / delta / stop sequence."""
        out: list[Delta] = []
        for index, block in enumerate(message.get("content") or []):
            out += self._start(index, {**block, "text": "", "thinking": "", "input": {}})
            kind = block.get("type")
            if kind == "text":
                out += self._delta(index, {"type": "text_delta", "text": block.get("text", "")})
            elif kind == "thinking":
                out += self._delta(index, {"type": "thinking_delta", "thinking": block.get("thinking", "")})
                out += self._delta(index, {"type": "signature_delta", "signature": block.get("signature", "")})
            elif kind in ("tool_use", "server_tool_use"):
                out += self._delta(index, {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()})
            for found in block.get("citations") or () if kind == "text" else ():
                out += self._delta(index, {"type": "citations_delta", "citation": found})
            out += self._stop(index)
        self._usage(message.get("usage") or {})
        self.stop = _STOP.get(message.get("stop_reason") or "", "stop")
        return out + [self._finish()]

    def _start(self, index: int, block: dict[str, Any]) -> list[Delta]:
        kind = block.get("type")
        state: dict[str, Any] = {"kind": kind, "chunks": [], "signature": ""}
        self.blocks[index] = state
        name = f"a{index}"
        if kind == "text":
            return [BlockStart(name, "text")] + ([BlockDelta(name, block["text"])] if block.get("text") else [])
        if kind == "thinking":
            return [BlockStart(name, "summary")]
        if kind == "redacted_thinking":
            state["data"] = block.get("data", "")
            return []
        if kind == "tool_use":
            if block.get("name") == self.format_tool:
                state["kind"] = "format"
                return [BlockStart(name, "text")]
            self.called_tool = True
            return [BlockStart(name, "tool_call", call_id=block.get("id", ""), name=block.get("name", ""))]
        if kind == "server_tool_use" and block.get("name") == "web_search":
            state["kind"], state["id"] = "search", block.get("id", "")
            return self.searches.start(state["id"])
        if kind == "web_search_tool_result":
            state["kind"] = "ignored"
            return self._searched(block)
        state["kind"] = "ignored"  # other server tools and their results are not modelled here
        return []

    def _searched(self, block: dict[str, Any]) -> list[Delta]:
        """A web search's results: the call it answers ends (failed when Anthropic says so)."""
        key = block.get("tool_use_id", "")
        results = block.get("content")
        urls = [r["url"] for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)] if isinstance(results, list) else []
        return self.searches.end(key, self.queries.pop(key, []), urls, failed=not isinstance(results, list))

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Delta]:
        state = self.blocks.get(index)
        if state is None or state["kind"] == "ignored":
            return []
        kind = delta.get("type")
        text = (
            delta.get("text")
            if kind == "text_delta"
            else delta.get("thinking")
            if kind == "thinking_delta"
            else delta.get("partial_json")
            if kind == "input_json_delta"
            else None
        )
        if kind == "signature_delta":
            state["signature"] += delta.get("signature", "")
        if kind == "citations_delta" and isinstance(delta.get("citation"), dict) and isinstance(delta["citation"].get("url"), str):
            state.setdefault("citations", []).append(delta["citation"])
        if state["kind"] == "search":  # its query, read whole when the block ends
            state["chunks"].append(text or "")
            return []
        if not text:
            return []
        state["chunks"].append(text)
        return [BlockDelta(f"a{index}", text)]

    def _stop(self, index: int) -> list[Delta]:
        state = self.blocks.pop(index, None)
        if state is None or state["kind"] == "ignored":
            return []
        name = f"a{index}"
        kind = state["kind"]
        if kind == "redacted_thinking":
            return [ReasoningEnd(seal("anthropic", [{"type": "redacted_thinking", "data": state["data"]}]))]
        if kind == "thinking":
            block = {"type": "thinking", "thinking": "".join(state["chunks"]), "signature": state["signature"]}
            return [BlockEnd(name), ReasoningEnd(seal("anthropic", [block]))]
        if kind == "tool_use" and not state["chunks"]:
            return [BlockDelta(name, "{}"), BlockEnd(name)]  # a call without arguments
        if kind == "search":
            query = query_of("".join(state["chunks"]))
            self.queries[state["id"]] = [query] if query else []
            return []
        length = len("".join(state["chunks"]))
        cited = [citation(name, c["url"], c.get("title") or "", 0, length) for c in state.get("citations", ())]
        return [*cited, BlockEnd(name)]

    def _usage(self, usage: dict[str, Any]) -> None:
        read = usage.get("cache_read_input_tokens") or 0
        written = usage.get("cache_creation_input_tokens") or 0
        if "input_tokens" in usage:
            self.usage.input_tokens = (usage.get("input_tokens") or 0) + read + written
            self.usage.cached_tokens = read
            self.usage.cache_write_tokens = written
        if "output_tokens" in usage:
            self.usage.output_tokens = usage.get("output_tokens") or 0
        if usage.get("server_tool_use"):
            self.usage.web_searches = usage["server_tool_use"].get("web_search_requests") or 0

    def _finish(self) -> Finish:
        reason = self.stop
        if reason == "tool_calls" and not self.called_tool:
            reason = "stop"  # only the structured-output tool was called: that is the answer
        return Finish(reason, self.usage)  # type: ignore[arg-type]
