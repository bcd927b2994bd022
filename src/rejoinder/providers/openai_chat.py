"""Chat Completions upstreams: OpenAI, vLLM, llama.cpp, Ollama, OpenRouter, Groq and kin.

Out: the body `providers.openai_chat_body` makes. Back: `content`, `refusal`, `reasoning_content` /
`reasoning` and `tool_calls` deltas become blocks; a non-streaming completion is read as one
big chunk by the same translator, so both paths yield the same deltas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
import orjson
from msgspec import Struct

from rejoinder.protocol.ids import new_id
from rejoinder.providers import tokens
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, Usage
from rejoinder.providers.failures import cut_short, stream_error, unreadable
from rejoinder.providers.http import Upstream, UpstreamLimits
from rejoinder.providers.openai_chat_body import chat_body
from rejoinder.providers.translate import TextRun


class _Function(Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(Struct):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _TopLogprob(Struct):
    token: str
    logprob: float
    bytes: list[int] | None = None


class _TokenLogprob(Struct):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[_TopLogprob] = []


class _Logprobs(Struct):
    content: list[_TokenLogprob] | None = None


class _Message(Struct):
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: Any = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(Struct):
    delta: _Message | None = None
    message: _Message | None = None
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _TokenDetails(Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class _Usage(Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _TokenDetails | None = None


class _Chunk(Struct):
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: Any = None


DEFAULT_BASE_URL = "https://api.openai.com/v1"
_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls", "function_call": "tool_calls"}


class OpenAIChat:
    """A deployment reached over `POST {base_url}/chat/completions`."""

    hosted_tool_types: frozenset[str] = frozenset()

    def __init__(self, base_url: str | None, api_key: str | None, limits: UpstreamLimits) -> None:
        base_url = base_url or DEFAULT_BASE_URL
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.openai_host = urlsplit(base_url).hostname == "api.openai.com"
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.upstream = Upstream(headers, api_key, limits)

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        body = orjson.dumps(chat_body(request, self.openai_host))
        async with self.upstream.call(self.url, body, request.stream) as reply:
            translator = _Translator()
            if not request.stream:
                chunk = _decode(await reply.body(), self.api_key)
                translator.done = True
                yield translator.feed(chunk, whole=True) + translator.finish()
                return
            async for deltas in reply.deltas(lambda data: translator.feed(_decode(data, self.api_key)), translator):
                yield deltas

    async def count_tokens(self, request: ModelRequest) -> int:
        """Chat Completions has no counting endpoint: counted here, with OpenAI's BPE (see
        `providers.tokens`), off the event loop."""
        body = chat_body(request, self.openai_host)
        return await asyncio.get_running_loop().run_in_executor(None, tokens.count_chat, body)


def _decode(data: bytes, secret: str | None) -> _Chunk | None:
    if data == b"[DONE]":
        return None
    try:
        chunk = _decode_chunk(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise unreadable() from None
    if chunk.error is not None:
        raise stream_error({"error": chunk.error}, secret)
    return chunk


class _Translator:
    """Chat Completions choices → blocks. One non-tool block is open at a time; tool calls are
    keyed by their `index`, so interleaved parallel calls stay apart."""

    def __init__(self) -> None:
        self.run = TextRun()
        self.tools: dict[int, tuple[str, str]] = {}  # index → (block id, call id)
        self.reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # `[DONE]` arrived

    def feed(self, chunk: _Chunk | None, whole: bool = False) -> list[Delta]:
        out: list[Delta] = []
        if chunk is None:  # the `[DONE]` sentinel
            self.done = True
            return out
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices or ():
            message = choice.message if whole else choice.delta
            if message is not None:
                reasoning = message.reasoning_content or (message.reasoning if isinstance(message.reasoning, str) else None)
                if reasoning:
                    out += self.run.add("reasoning", reasoning)
                if message.content:
                    logprobs = _logprobs(choice.logprobs)
                    out += self.run.add("text", message.content, logprobs)
                if message.refusal:
                    out += self.run.add("refusal", message.refusal)
                if message.tool_calls:
                    out += self.run.close()
                    for position, call in enumerate(message.tool_calls):
                        out += self._tool_call(position if whole or call.index is None else call.index, call)
            if choice.finish_reason:
                self.reason = _FINISH.get(choice.finish_reason, "stop")
            break  # only the first choice: the gateway never asks for n > 1
        return out

    def _tool_call(self, index: int, call: _ToolCall) -> list[Delta]:
        out: list[Delta] = []
        function = call.function or _Function()
        known = self.tools.get(index)
        # A new id at a known index is a new call: some servers number every call 0.
        if known is None or (call.id and call.id != known[1]):
            if known is not None:
                out.append(BlockEnd(known[0]))
            known = self.tools[index] = (self.run.new_block(), call.id or new_id("call"))
            out.append(BlockStart(known[0], "tool_call", call_id=known[1], name=function.name or ""))
        block = known[0]
        if function.arguments:
            out.append(BlockDelta(block, function.arguments))
        return out

    def finish(self) -> list[Delta]:
        """End the stream (open blocks end with it); a stream cut before its end is an error."""
        if self.reason is None and not self.done:
            raise cut_short()
        return [Finish(self.reason or "stop", self.usage)]


def _usage(usage: _Usage) -> Usage:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def _logprobs(logprobs: _Logprobs | None) -> list[dict] | None:
    if logprobs is None or not logprobs.content:
        return None
    return [
        {
            "token": entry.token,
            "logprob": entry.logprob,
            "bytes": entry.bytes or list(entry.token.encode()),
            "top_logprobs": [{"token": top.token, "logprob": top.logprob, "bytes": top.bytes or list(top.token.encode())} for top in entry.top_logprobs],
        }
        for entry in logprobs.content
    ]
