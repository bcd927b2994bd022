"""A fake Anthropic Messages API at `/v1/messages`, byte for byte in the documented format.

Scenarios are the stream's event list (`message_start`, `content_block_*` with `text_delta`,
`input_json_delta`, `thinking_delta` and `signature_delta`, `ping`, `message_delta`,
`message_stop`, `error`); the non-streaming body is assembled from the same events.
"""

from __future__ import annotations

import hashlib
import json
import time

from aiohttp import web
from fake_chat import SHELL_ARGUMENTS, SHELL_TOOL
from fake_server import FakeServer, fake_count, sse

SIGNATURE = "EqQBCkYIARgCIkDsig-for-thinking-block-0=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


def _start(usage: dict | None = None) -> dict:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1},
        },
    }


def _text(index: int, *pieces: str) -> list[dict]:
    return (
        [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}]
        + [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}} for p in pieces]
        + [{"type": "content_block_stop", "index": index}]
    )


def _tool(index: int, call_id: str, name: str, *pieces: str) -> list[dict]:
    return (
        [{"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}}]
        + [{"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}} for p in pieces]
        + [{"type": "content_block_stop", "index": index}]
    )


def _thinking(index: int, *pieces: str) -> list[dict]:
    return (
        [{"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}]
        + [{"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": p}} for p in pieces]
        + [
            {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": SIGNATURE}},
            {"type": "content_block_stop", "index": index},
        ]
    )


def _end(stop: str, output_tokens: int = 15) -> list[dict]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


PING = {"type": "ping"}
SEARCH_ID = "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
SEARCH_RESULTS = [
    {
        "type": "web_search_result",
        "title": "Paris weather today",
        "url": "https://weather.example/paris",
        "encrypted_content": "EqgfCioIARgBIiQ3YTE",
        "page_age": "April 30, 2025",
    },
    {"type": "web_search_result", "title": "Météo Paris", "url": "https://meteo.example/paris", "encrypted_content": "EpwBCioIARgBIiQz", "page_age": None},
]
CITATION = {
    "type": "web_search_result_location",
    "url": "https://weather.example/paris",
    "title": "Paris weather today",
    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ",
    "cited_text": "Sunny, 21°C in Paris this afternoon.",
}


def _search(index: int) -> list[dict]:
    """Anthropic's server-side web search: its `server_tool_use` block, then its results."""
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": '{"query": "weather'}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ' in Paris"}'}},
        {"type": "content_block_stop", "index": index},
        {
            "type": "content_block_start",
            "index": index + 1,
            "content_block": {"type": "web_search_tool_result", "tool_use_id": SEARCH_ID, "content": SEARCH_RESULTS},
        },
        {"type": "content_block_stop", "index": index + 1},
    ]


def _cited(index: int, text: str) -> list[dict]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": "", "citations": []}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "citations_delta", "citation": CITATION}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": index},
    ]


SCENARIOS: dict[str, list[dict]] = {
    "text": [_start(), *_text(0, "Hello", ", world", "!")[:1], PING, *_text(0, "Hello", ", world", "!")[1:], *_end("end_turn")],
    "cached": [
        _start({"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 1}),
        *_text(0, "Cached."),
        *_end("end_turn", 3),
    ],
    "tools-parallel": [
        _start(),
        *_text(0, "Checking both."),
        *_tool(1, "toolu_01A", "get_weather", '{"city"', ': "Oslo"}'),
        *_tool(2, "toolu_01B", "get_time", "", '{"zone": "CET"}'),
        *_end("tool_use"),
    ],
    "tool-no-args": [_start(), *_tool(0, "toolu_01C", "get_time"), *_end("tool_use")],
    "thinking-tool": [
        _start(),
        *_thinking(0, "The user wants", " the weather."),
        *_text(1, "Let me check."),
        *_tool(2, "toolu_01T", "get_weather", '{"city": "Paris"}'),
        *_end("tool_use", 80),
    ],
    "redacted": [
        _start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": REDACTED}},
        {"type": "content_block_stop", "index": 0},
        *_text(1, "Done."),
        *_end("end_turn"),
    ],
    "max-tokens": [_start(), *_text(0, "Once upon a"), *_end("max_tokens", 4)],
    "refusal": [_start(), *_text(0, "I can't"), *_end("refusal", 2)],
    "search": [
        _start(),
        *_text(0, "I'll search for that."),
        *_search(1),
        *_cited(3, "It is sunny and 21°C."),
        *_text(4, " Enjoy!"),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 40, "server_tool_use": {"web_search_requests": 1}},
        },
        {"type": "message_stop"},
    ],
    "search-cut": [
        _start(),
        *_search(0)[:3],
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ],
    "midstream-error": [_start(), *_text(0, "Partial")[:2], {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}],
}

ERRORS = {
    "error-400": (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: roles must alternate"}}, {}),
    "error-401": (401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, {}),
    "error-429": (
        429,
        {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}},
        {"retry-after": "12"},
    ),
    "error-529": (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, {}),
}


def _marks_a_breakpoint(body: dict) -> bool:
    return "cache_control" in json.dumps(body)


def _assemble(events: list[dict]) -> dict:
    """The non-streaming Message built from a scenario's events."""
    message = dict(events[0]["message"])
    blocks: dict[int, dict] = {}
    partial: dict[int, str] = {}
    for event in events[1:]:
        kind = event["type"]
        if kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "citations_delta":
                block["citations"] = [*block.get("citations", []), delta["citation"]]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["usage"] = {**message["usage"], **event["usage"]}
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text) if text else {}
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


class PromptCache:
    """Anthropic's prompt cache, as its documentation states the rules: a request's prefix
    (tools, then system, then messages, in that order) is cached only up to a block that
    carries `cache_control`, at most four of them; a later request reads it back only up to
    a breakpoint an earlier one also marked, within its TTL (5 minutes, or `"ttl": "1h"`,
    refreshed by each hit), and only when that prefix holds at least the model's minimum
    tokens. `cache_control` on a thinking or empty text block, a fifth breakpoint, an unknown
    TTL, or a longer TTL after a shorter one is a 400. Tokens are this fake's own count, a
    block's JSON length over four."""

    TTL = {"5m": 300.0, "1h": 3600.0}

    def __init__(self) -> None:
        self.entries: dict[str, float] = {}  # a prefix's hash → when it expires (monotonic)

    @staticmethod
    def minimum(model: str) -> int:
        return 4096 if model.startswith(("claude-opus-4-5", "claude-haiku-4-5")) else 1024

    def account(self, body: dict) -> dict | str:
        """The request's usage (`input_tokens`, `cache_creation_input_tokens`,
        `cache_read_input_tokens`, `cache_creation`), or why it is refused."""
        blocks: list[tuple[dict, dict | None]] = []  # each block without its cache_control, and that
        for tool in body.get("tools", ()):
            blocks.append(self._split(tool))
        system = body.get("system")
        for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or ():
            blocks.append(self._split(block))
        for message in body["messages"]:
            content = message["content"]
            for block in [{"type": "text", "text": content}] if isinstance(content, str) else content:
                blocks.append(self._split(block))
        marks = [i for i, (_, control) in enumerate(blocks) if control is not None]
        if len(marks) > 4:
            return f"A maximum of 4 blocks with cache_control may be provided. Found {len(marks)}."
        ttls = []
        for i in marks:
            block, control = blocks[i]
            if block.get("type") in ("thinking", "redacted_thinking") or (block.get("type") == "text" and not block.get("text")):
                return "cache_control cannot be set on this block."
            if control.get("type") != "ephemeral" or control.get("ttl", "5m") not in self.TTL or set(control) - {"type", "ttl"}:
                return "cache_control: expected {type: ephemeral, ttl?: 5m | 1h}."
            ttls.append(self.TTL[control.get("ttl", "5m")])
        if ttls != sorted(ttls, reverse=True):
            return "a ttl='1h' cache_control block must not come after a ttl='5m' one."
        sizes = [len(json.dumps(block, sort_keys=True)) // 4 for block, _ in blocks]
        ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
        minimum, now = self.minimum(body["model"]), time.monotonic()
        keys = {i: hashlib.sha256(json.dumps([b for b, _ in blocks[: i + 1]], sort_keys=True).encode()).hexdigest() for i in marks}
        hit = max((i for i in marks if ends[i] >= minimum and self.entries.get(keys[i], 0) > now), default=None)
        read = ends[hit] if hit is not None else 0
        written = {"5m": 0, "1h": 0}
        for i, lifetime in zip(marks, ttls, strict=True):
            if ends[i] < minimum:
                continue
            self.entries[keys[i]] = max(self.entries.get(keys[i], 0), now + lifetime)
            if hit is None or i > hit:
                label = "1h" if lifetime > 300 else "5m"
                last = ends[i] - read - sum(written.values())
                written[label] += last
        created = sum(written.values())
        return {
            "input_tokens": sum(sizes) - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written["5m"], "ephemeral_1h_input_tokens": written["1h"]},
        }

    @staticmethod
    def _split(block: dict) -> tuple[dict, dict | None]:
        block = dict(block)
        return block, block.pop("cache_control", None)


def _cached(events: list[dict], usage: dict) -> list[dict]:
    """A scenario's events with the usage the cache accounted for the request."""
    start = {**events[0], "message": {**events[0]["message"], "usage": {**usage, "output_tokens": 1}}}
    return [start, *events[1:]]


def _agent(body: dict) -> list[dict]:
    """`agent`: a coding agent's model: each turn runs one more shell command, until it has seen
    the output of eight, then answers."""
    outputs = sum(1 for m in body["messages"] if isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_result")
    if outputs >= 8:
        return [_start(), *_text(0, "All checks passed."), *_end("end_turn", 12)]
    command = json.dumps({"command": ["bash", "-lc", f"pytest -q tests/test_step_{outputs}.py"]})
    return [_start(), *_text(0, f"Running step {outputs}."), *_tool(1, f"toolu_agent{outputs}", SHELL_TOOL, command), *_end("tool_use", 60)]


# scenario → a tool the gateway runs (as it offers it) and its arguments' pieces
GATEWAY_CALLS = {
    "mcp-add": ("mcp__docs__add", '{"a": 2, ', '"b": 3}'),
    "mcp-broken": ("mcp__docs__add", '{"a": 2, ', '"b": 3}'),
    "file-search": ("file_search", '{"queries": ["launch code", ', '"pelican"]}'),
}


class FakeAnthropic(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.cache = PromptCache()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1/messages/count_tokens", self._count)

    async def _count(self, request: web.Request) -> web.Response:
        """`/v1/messages/count_tokens`: the body has no stream, max_tokens or sampling fields."""
        body = await self.record(request)
        assert not {"stream", "max_tokens", "temperature"} & set(body), body
        return web.json_response({"input_tokens": fake_count(body)})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        model = body["model"].split("-", 1)[-1]  # "claude-thinking-tool" → the scenario
        if model in ERRORS:
            status, error, headers = ERRORS[model]
            return web.json_response(error, status=status, headers={"request-id": "req_fake", **headers})
        events = SCENARIOS.get(model) or self._structured(model, body) or (_agent(body) if model == "agent" else SCENARIOS["text"])
        if model == "codex-shell":  # call Codex's shell tool, then answer once its output is back
            answered = any(isinstance(m["content"], list) and any(b.get("type") == "tool_result" for b in m["content"]) for m in body["messages"])
            events = SCENARIOS["text"] if answered else [_start(), *_tool(0, "toolu_sh1", SHELL_TOOL, SHELL_ARGUMENTS), *_end("tool_use")]
        if model == "mcp-broken" and "tool_result" in json.dumps(body["messages"][-1]):  # the call after the tool's output is overloaded
            status, error, headers = ERRORS["error-529"]
            return web.json_response(error, status=status, headers={"request-id": "req_fake", **headers})
        if model in GATEWAY_CALLS:  # call a tool the gateway runs, then answer from its output
            last = body["messages"][-1]["content"]
            told = [block["content"] for block in last if isinstance(block, dict) and block.get("type") == "tool_result"] if isinstance(last, list) else []
            said = [_start(), *_text(0, "The tool said: ", told[-1] if told else ""), *_end("end_turn")]
            events = said if told else [_start(), *_tool(0, "toolu_mcp1", *GATEWAY_CALLS[model]), *_end("tool_use")]
        if model == "agent" or _marks_a_breakpoint(body):  # billed by its size and the cache (the other scenarios' usage is canned)
            usage = self.cache.account(body)
            if isinstance(usage, str):
                error = {"type": "error", "error": {"type": "invalid_request_error", "message": usage}}
                return web.json_response(error, status=400, headers={"request-id": "req_fake"})
            events = _cached(events, usage)
        if not body.get("stream"):
            return web.json_response(_assemble(events))
        frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        if model == "cut":
            frames = frames[:4]
        return await sse(request, frames)

    def _structured(self, model: str, body: dict) -> list[dict] | None:
        """`json`: answer by calling the structured-output tool the gateway declared last."""
        if model not in ("json", "cut"):
            return None
        if model == "cut":
            return [_start(), *_text(0, "Partial", " and more")]
        tool = body["tools"][-1]["name"]
        return [_start(), *_tool(0, "toolu_01J", tool, '{"city": "Paris", ', '"temperature_c": 21}'), *_end("tool_use")]
