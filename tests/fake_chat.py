"""A fake Chat Completions server: a real HTTP server speaking OpenAI's documented wire format.

The `model` a request names picks the scenario (`text`, `tools-parallel`, `error-429` …).
Every scenario is a list of stream chunks' `choices[0]` objects; the non-streaming body is
assembled from the same list, the way OpenAI's own server answers both. Quirks reproduced:
`usage: null` on every chunk and a usage-only last chunk with `choices: []`, tool-call
argument deltas split and interleaved across parallel calls, `reasoning_content` deltas,
OpenAI's error bodies, errors mid-stream and a stream cut without `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import zlib
from typing import Any

from aiohttp import web
from fake_server import FakeServer, ImplicitCache

USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 3, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}


def _text(*pieces: str, finish: str = "stop") -> list[dict]:
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}]
    chunks += [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None} for piece in pieces]
    chunks.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
    return chunks


def _call_start(index: int, call_id: str, name: str) -> dict:
    return {
        "index": 0,
        "delta": {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]},
        "logprobs": None,
        "finish_reason": None,
    }


def _call_args(index: int, arguments: str) -> dict:
    return {"index": 0, "delta": {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}, "logprobs": None, "finish_reason": None}


def _logprob(token: str, logprob: float) -> dict:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": token, "logprob": logprob, "bytes": list(token.encode())}],
    }


# The Codex CLI's shell tool, and a command for it to run (see tests/test_codex.py).
SHELL_TOOL = "exec_command"
TOOL_CALLS = {  # scenario → the tool it calls (an MCP tool as the gateway offers it), its arguments, and how many turns call it
    "call-weather": ("get_weather", '{"city": "Paris"}', 1),  # a client's function
    "mcp-add": ("mcp__docs__add", '{"a": 2, "b": 3}', 1),
    "mcp-fail": ("mcp__docs__fail", "{}", 1),
    "mcp-big": ("mcp__docs__big", '{"size": 100000}', 1),
    "mcp-picture": ("mcp__docs__picture", "{}", 1),
    "mcp-naps": ("mcp__docs__nap", '{"seconds": 5}', 4),
    "mcp-time": ("mcp__time__get_current_time", '{"timezone": "UTC"}', 1),  # the mcp-server-time package's tool
    "file-search": ("file_search", '{"queries": ["launch code", "pelican"]}', 1),  # the gateway's file_search function
}
SHELL_ARGUMENTS = '{"cmd": "echo hello-from-codex"}'

SCENARIOS: dict[str, list[dict]] = {
    "text": _text("Hello", ", world", "!"),
    # a call of a tool offered inside the namespace `crm` (offered upstream as `crm__get_weather`)
    "namespaced-call": [
        _call_start(0, "call_ns1", "crm__get_weather"),
        _call_args(0, '{"city": "Oslo"}'),
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "length": _text("Once upon", " a time", finish="length"),
    "content-filter": _text("I was about to", finish="content_filter"),
    "json": _text('{"city": "Paris", ', '"temperature_c": 21}'),
    "refusal": [
        {"index": 0, "delta": {"role": "assistant", "content": None, "refusal": ""}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"refusal": "I can't help"}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"refusal": " with that."}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
    ],
    "tool-single": [
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, "id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": None,
        },
        _call_args(0, '{"ci'),
        _call_args(0, 'ty": "Par'),
        _call_args(0, 'is"}'),
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "tools-parallel": [
        {"index": 0, "delta": {"role": "assistant", "content": None, "refusal": None}, "logprobs": None, "finish_reason": None},
        _call_start(0, "call_p1", "get_weather"),
        _call_start(1, "call_p2", "get_time"),
        _call_args(0, '{"city":'),
        _call_args(1, '{"zone":'),
        _call_args(0, ' "Oslo"}'),
        _call_args(1, ' "CET"}'),
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "tools-same-index": [  # Mistral-style: every call numbered 0, each whole in its own chunk
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, "id": "call_m1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}],
            },
            "logprobs": None,
            "finish_reason": None,
        },
        {
            "index": 0,
            "delta": {"tool_calls": [{"index": 0, "id": "call_m2", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}}]},
            "logprobs": None,
            "finish_reason": None,
        },
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "custom-call": [  # a custom tool called through its function form: {"input": "<patch>"}
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": 0, "id": "call_c1", "type": "function", "function": {"name": "apply_patch", "arguments": ""}}],
            },
            "logprobs": None,
            "finish_reason": None,
        },
        _call_args(0, '{"input": "*** Begin Patch\\n*** Add File: a.txt\\n'),
        _call_args(0, '+hello\\n*** End Patch"}'),
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "text-then-tool": [
        {"index": 0, "delta": {"role": "assistant", "content": "Let me check."}, "logprobs": None, "finish_reason": None},
        _call_start(0, "call_t1", "get_weather"),
        _call_args(0, '{"city": "Rome"}'),
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "reasoning": [
        {"index": 0, "delta": {"role": "assistant", "content": None, "reasoning_content": ""}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"reasoning_content": "The user greets me."}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"reasoning_content": " I greet back."}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"content": "Hi there!"}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
    ],
    "reasoning-field": [
        {"index": 0, "delta": {"role": "assistant", "content": "", "reasoning": "Thinking hard."}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {"content": "Done."}, "logprobs": None, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
    ],
    "logprobs": [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": {"content": [], "refusal": None}, "finish_reason": None},
        {"index": 0, "delta": {"content": "Yes"}, "logprobs": {"content": [_logprob("Yes", -0.01)], "refusal": None}, "finish_reason": None},
        {"index": 0, "delta": {"content": "."}, "logprobs": {"content": [_logprob(".", -0.2)], "refusal": None}, "finish_reason": None},
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
    ],
}

ERRORS = {
    "error-400": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        {},
    ),
    "error-401": (
        401,
        {"error": {"message": "Incorrect API key provided: sk-upstr***cret.", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
        {},
    ),
    "error-429": (
        429,
        {"error": {"message": "Rate limit reached for requests.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
        {"Retry-After": "7"},
    ),
    "error-500": (
        500,
        {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": None, "code": None}},
        {},
    ),
    "error-503": (
        503,
        {"error": {"message": "The engine is currently overloaded, please try again later.", "type": "server_error", "param": None, "code": None}},
        {},
    ),
    "error-html": (502, None, {}),
}


def _chunk(model: str, choices: list[dict], usage: Any = None) -> bytes:
    body = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
    }
    body["usage"] = usage
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _completion(model: str, chunks: list[dict]) -> dict:
    """Assemble the non-streaming body from a scenario's chunks."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    calls: dict[int, dict] = {}
    logprobs: list = []
    finish = None
    for choice in chunks:
        delta = choice["delta"]
        for key in ("content", "refusal", "reasoning_content", "reasoning"):
            if delta.get(key):
                message[key] = (message.get(key) or "") + delta[key]
        for call in delta.get("tool_calls") or []:
            entry = calls.setdefault(call["index"], {"id": call.get("id"), "type": "function", "function": {"name": "", "arguments": ""}})
            entry["function"]["name"] += call.get("function", {}).get("name") or ""
            entry["function"]["arguments"] += call.get("function", {}).get("arguments") or ""
        if choice.get("logprobs"):
            logprobs += choice["logprobs"]["content"]
        finish = choice["finish_reason"] or finish
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": {"content": logprobs, "refusal": None} if logprobs else None, "finish_reason": finish}],
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


FLOOD_CHUNKS = 10_000  # of 4 KiB each (the `flood` scenario)


class FakeChat(FakeServer):
    """Chat Completions at `/v1/chat/completions`."""

    flooded = 0  # chunks the last `flood` stream has written
    flaky = 0  # calls of the `json-flaky` scenario

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self.cache = ImplicitCache()  # the `agent` scenario's
        self.embedded: list[dict] = []  # embeddings requests (see `_embeddings`)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/embeddings", self._embeddings)

    async def _embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's embeddings, made up: each word hashed into one of 64 dimensions (so texts
        that share words are near); kept apart from the chat requests in `embedded`, each with
        the key it was called with."""
        body = await request.json()
        body["key"] = request.headers.get("Authorization")
        self.embedded.append(body)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for index, text in enumerate(texts):
            vector = [0.0] * 64
            for word in re.findall(r"\w+", text.lower()):
                vector[zlib.crc32(word.encode()) % 64] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        model = body["model"].removeprefix("mock-")
        if model in ERRORS:
            status, error, headers = ERRORS[model]
            if error is None:
                return web.Response(status=status, text="<html><body>Bad gateway</body></html>", content_type="text/html")
            return web.json_response(error, status=status, headers=headers)
        if model == "hang":
            await asyncio.sleep(30)
        if model == "late":  # the answer, after three seconds without a byte
            await asyncio.sleep(3)
        if model == "tenth":  # the answer, after a tenth of a second: an upstream with a steady pace
            await asyncio.sleep(0.1)
        if model in ("cut", "midstream-error", "slow"):
            return await self._special(request, body, model)
        if model == "paced":
            return await self._paced(request, body)
        if model == "tool-slow":
            return await self._tool_slow(request, body)
        if model == "flood":
            return await self._flood(request, body)
        if model in HOSTILE:
            return await HOSTILE[model](request, body)
        chunks = SCENARIOS.get(model, SCENARIOS["text"])  # real model names answer with text
        if model == "json-flaky":  # output that misses its schema every other time (the count is `flaky`)
            self.flaky += 1
            chunks = SCENARIOS["json"] if self.flaky % 2 == 0 else _text('{"city": 5}')
        if model == "searcher":  # search the web (the gateway's web_search function), then answer from the results
            answered = any(message.get("role") == "tool" for message in body["messages"])
            asked = json.dumps(body["messages"][-1].get("content"))
            query = '{"query": "fail please"}' if "fail" in asked else '{"query": "weather in Oslo"}'
            chunks = (
                _text("Oslo: ", "18C, clear.") if answered else [_call_start(0, "call_ws1", "web_search"), _call_args(0, query), *SCENARIOS["tool-single"][-1:]]
            )
        if model == "mcp-add-twice":  # two calls of the docs server's add at once, then an answer from both outputs
            told = [message["content"] for message in body["messages"] if message.get("role") == "tool"]
            calls = [_call_start(0, "call_mcp1", "mcp__docs__add"), _call_args(0, '{"a": 2, "b": 3}')]
            calls += [_call_start(1, "call_mcp2", "mcp__docs__add"), _call_args(1, '{"a": 4, "b": 5}')]
            chunks = _text("The tools said: ", " | ".join(told)) if told else [*calls, *SCENARIOS["tool-single"][-1:]]
        if model in TOOL_CALLS or model == "mcp-long-name":  # call a tool, then answer from its output
            asked = max(i for i, message in enumerate(body["messages"]) if message.get("role") == "user")
            told = [message["content"] for message in body["messages"][asked:] if message.get("role") == "tool"]
            if model == "mcp-long-name":  # the docs server's search, by the name the gateway offered it under
                offered = next(tool["function"]["name"] for tool in body["tools"] if tool["function"]["name"].startswith("mcp__docs__docs_search"))
                name, arguments, times = offered, '{"phrase": "rejoinder"}', 1
            else:
                name, arguments, times = TOOL_CALLS[model]
            call = [_call_start(0, f"call_mcp{len(told) + 1}", name), _call_args(0, arguments), *SCENARIOS["tool-single"][-1:]]
            chunks = _text("The tool said: ", told[-1]) if len(told) >= times else call
        if model == "codex-shell":  # call Codex's shell tool, then answer once its output is back
            answered = any(message.get("role") == "tool" for message in body["messages"])
            chunks = SCENARIOS["text"] if answered else [_call_start(0, "call_sh1", SHELL_TOOL), _call_args(0, SHELL_ARGUMENTS), *SCENARIOS["tool-single"][-1:]]
        usage = USAGE
        if model == "agent":  # usage of its own: the request's size, and what OpenAI's cache would hold of it
            prompt, cached = self.cache.account([body.get("tools"), *body["messages"]])
            usage = {**USAGE, "prompt_tokens": prompt, "total_tokens": prompt + 10, "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}}
        if not body.get("stream"):
            return web.json_response({**_completion(body["model"], chunks), "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        for choice in chunks:
            await response.write(_chunk(body["model"], [choice]))
        if include_usage:
            await response.write(_chunk(body["model"], [], usage))
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _paced(self, request: web.Request, body: dict) -> web.StreamResponse:
        """A whole answer at a steady pace: 30 tokens, one every 30 ms, then the finish."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        with self.counted():
            await response.prepare(request)
            for i in range(30):
                await response.write(_chunk(body["model"], [{"index": 0, "delta": {"content": f"t{i} "}, "logprobs": None, "finish_reason": None}]))
                await asyncio.sleep(0.03)
            await response.write(_chunk(body["model"], [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
            await response.write(_chunk(body["model"], [], USAGE))
            await response.write(b"data: [DONE]\n\n")
        return response

    async def _flood(self, request: web.Request, body: dict) -> web.StreamResponse:
        """40 MB of text as fast as the reader takes it, counting the chunks written in
        `flooded` (a reader that stops makes the count stop)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        piece = "x" * 4096
        self.flooded = 0
        with self.counted():
            await response.prepare(request)
            for _ in range(FLOOD_CHUNKS):
                await response.write(_chunk(body["model"], [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]))
                self.flooded += 1
            finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
            await response.write(_chunk(body["model"], [finish]) + _chunk(body["model"], [], USAGE) + b"data: [DONE]\n\n")
        return response

    async def _tool_slow(self, request: web.Request, body: dict) -> web.StreamResponse:
        """A function call whose arguments come at once and whose finish comes half a second
        later, in one write with the usage (WebSocket steering's pending case)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        model = body["model"]
        with self.counted():
            await response.prepare(request)
            await response.write(_chunk(model, [_call_start(0, "call_slow", "get_weather")]) + _chunk(model, [_call_args(0, '{"city": "Oslo"}')]))
            await asyncio.sleep(0.5)
            finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
            await response.write(_chunk(model, [finish]) + _chunk(model, [], USAGE) + b"data: [DONE]\n\n")
        return response

    async def _special(self, request: web.Request, body: dict, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        first = {"index": 0, "delta": {"role": "assistant", "content": "Partial"}, "logprobs": None, "finish_reason": None}
        with self.counted():
            await response.prepare(request)
            await response.write(b": keep-alive comment\n\n")
            await response.write(_chunk(body["model"], [first]))
            if model == "cut":
                request.transport.close()  # the connection dies without finish_reason or [DONE]
                return response
            if model == "midstream-error":
                await response.write(
                    b'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}\n\n'
                )
                return response
            for _ in range(200):  # slow: a token every 50 ms for ten seconds, unless the gateway hangs up
                await asyncio.sleep(0.05)
                await response.write(_chunk(body["model"], [{"index": 0, "delta": {"content": " more"}, "logprobs": None, "finish_reason": None}]))
        return response


# Upstreams that misbehave in ways only limits catch (see `Limits` in providers/http.py).
async def _drip(request: web.Request, body: dict) -> web.StreamResponse:
    """Headers at once, then a byte every 100 ms of an event that never ends: the read never
    goes quiet, so only an event deadline stops it."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if body["model"].endswith("after-first"):
        await response.write(_chunk(body["model"], [{"index": 0, "delta": {"role": "assistant", "content": "Partial"}, "finish_reason": None}]))
    for byte in (b"data: " + b"x" * 400)[:300]:
        await asyncio.sleep(0.1)
        await response.write(bytes([byte]))
    return response


async def _drip_body(request: web.Request, body: dict) -> web.StreamResponse:
    """A non-streaming completion whose headers come at once and whose body comes a byte every
    100 ms: each read is quick, the whole body would take a minute."""
    whole = json.dumps(_completion(body["model"], SCENARIOS["text"])).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(whole))})
    await response.prepare(request)
    for byte in whole[:600]:
        await asyncio.sleep(0.1)
        await response.write(bytes([byte]))
    return response


async def _late_headers(request: web.Request, body: dict) -> web.StreamResponse:
    await asyncio.sleep(30)
    return web.json_response({})


async def _endless_line(request: web.Request, body: dict) -> web.StreamResponse:
    """One server-sent event line that never ends: 64 KiB writes, up to 64 MiB."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: ")
    block = b"x" * 65536
    for _ in range(1024):
        await response.write(block)
    return response


async def _huge_body(request: web.Request, body: dict) -> web.StreamResponse:
    """A non-streaming body of 8 MiB (a completion whose content is that long)."""
    return web.json_response(_completion(body["model"], _text("y" * (8 * 1024 * 1024))))


async def _usage_overflow(request: web.Request, body: dict) -> web.StreamResponse:
    """Token counts beyond 64 bits: no encoder can echo them."""
    usage = {**USAGE, "prompt_tokens": 2**70, "total_tokens": 2**70}
    if not body.get("stream"):
        return web.json_response({**_completion(body["model"], SCENARIOS["text"]), "usage": usage}, dumps=json.dumps)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for choice in SCENARIOS["text"]:
        await response.write(_chunk(body["model"], [choice]))
    await response.write(_chunk(body["model"], [], usage) + b"data: [DONE]\n\n")
    return response


async def _odd_event_name(request: web.Request, body: dict) -> web.StreamResponse:
    """An `event:` line that is not UTF-8 before every (good) chunk."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for choice in SCENARIOS["text"]:
        await response.write(b"event: \xff\xfe\n" + _chunk(body["model"], [choice]))
    await response.write(b"data: [DONE]\n\n")
    return response


async def _echo_key(request: web.Request, body: dict) -> web.StreamResponse:
    """A proxy's plain-text error page that quotes the request's Authorization header, the key
    starting at byte 280 (where a cut at 300 would have kept part of it)."""
    return web.Response(status=500, text="upstream proxy error; " + "." * 234 + " request header: " + request.headers.get("Authorization", ""))


async def _pause(request: web.Request, body: dict) -> web.StreamResponse:
    """The first chunk, half a second of quiet, then the rest of a text answer."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    chunks = SCENARIOS["text"]
    await response.write(_chunk(body["model"], [chunks[0]]) + _chunk(body["model"], [chunks[1]]))
    await asyncio.sleep(0.5)
    for choice in chunks[2:]:
        await response.write(_chunk(body["model"], [choice]))
    await response.write(_chunk(body["model"], [], USAGE) + b"data: [DONE]\n\n")
    return response


HOSTILE = {
    "pause": _pause,
    "echo-key": _echo_key,
    "drip": _drip,
    "drip-after-first": _drip,
    "drip-body": _drip_body,
    "late-headers": _late_headers,
    "endless-line": _endless_line,
    "huge-body": _huge_body,
    "usage-overflow": _usage_overflow,
    "odd-event-name": _odd_event_name,
}
