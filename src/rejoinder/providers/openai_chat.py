"""Chat Completions upstreams: OpenAI, vLLM, llama.cpp, Ollama, OpenRouter, Groq and kin.

Out: instructions lead as a system message, consecutive function calls merge into one
assistant message with `tool_calls`, outputs become `tool` messages, images `image_url` parts,
`text.format` becomes `response_format`. Back: `content`, `refusal`, `reasoning_content` /
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

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Message,
    OutputText,
    Refusal,
    message_text,
)
from rejoinder.protocol.request import TextFormatJsonObject, TextFormatJsonSchema
from rejoinder.protocol.tools import NamedFunction
from rejoinder.providers import tokens
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, Usage
from rejoinder.providers.failures import cut_short, stream_error, unreadable
from rejoinder.providers.http import Limits, Upstream
from rejoinder.providers.translate import SAMPLING, TextRun, offered_tools, sampling


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

    runs_hosted_tools = False

    def __init__(self, base_url: str | None, api_key: str | None, limits: Limits) -> None:
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


def chat_body(request: ModelRequest, openai_host: bool) -> dict[str, Any]:
    """The Chat Completions request for one model turn."""
    params = request.settings
    body: dict[str, Any] = {"model": request.upstream_model, "messages": _messages(request, openai_host)}
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key"):
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    body.update(sampling(params, "openai-chat", SAMPLING, verbosity=openai_host))
    if openai_host:  # OpenAI's own knobs, which other servers may refuse
        if params.service_tier not in (None, "auto"):
            body["service_tier"] = params.service_tier
        if params.text is not None and params.text.verbosity is not None:
            body["verbosity"] = params.text.verbosity
        if params.prompt_cache_retention is not None:
            body["prompt_cache_retention"] = params.prompt_cache_retention
    if params.max_output_tokens is not None:
        body["max_completion_tokens" if openai_host else "max_tokens"] = params.max_output_tokens
    if params.include and "message.output_text.logprobs" in params.include:
        body["logprobs"] = True
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
    if params.reasoning is not None and params.reasoning.effort is not None:
        body["reasoning_effort"] = params.reasoning.effort
    fmt = params.text.format if params.text is not None else None
    if isinstance(fmt, TextFormatJsonSchema):
        schema = {"name": fmt.name, "schema": fmt.schema}
        if fmt.description is not None:
            schema["description"] = fmt.description
        if fmt.strict is not None:
            schema["strict"] = fmt.strict
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, TextFormatJsonObject):
        body["response_format"] = {"type": "json_object"}
    _tools(params, body)
    return body


def _tools(params: Any, body: dict[str, Any]) -> None:
    tools, choice = offered_tools(params)
    if not tools:
        return
    body["tools"] = [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                **({"description": tool.description} if tool.description is not None else {}),
                "parameters": tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}},
                **({"strict": tool.strict} if tool.strict is not None else {}),
            },
        }
        for tool in tools
    ]
    body["tool_choice"] = {"type": "function", "function": {"name": choice.name}} if isinstance(choice, NamedFunction) else choice
    if params.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = params.parallel_tool_calls


def _messages(request: ModelRequest, openai_host: bool) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.settings.instructions:
        messages.append({"role": "system", "content": request.settings.instructions})
    for item in request.items:
        if type(item) is Message:
            content = item.content
            # the common case inline, kept cheap: long histories are mostly one-part text messages
            if len(content) == 1 and type(content[0]) in _PLAIN and item.role != "developer":
                messages.append({"role": item.role, "content": content[0].text})
            else:
                messages.append(_message(item, openai_host))
        elif isinstance(item, FunctionCall):
            call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutput):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": message_text(item.output)})
        # Reasoning items are dropped: Chat Completions servers reject reasoning sent back.
    return messages


_PLAIN = frozenset((InputText, OutputText))


def _message(item: Message, openai_host: bool) -> dict[str, Any]:
    if item.role == "assistant":
        message: dict[str, Any] = {"role": "assistant", "content": message_text(item.content)}
        refusal = "".join(part.refusal for part in item.content if isinstance(part, Refusal))
        if refusal:
            message["refusal"] = refusal
        return message
    role = "system" if item.role == "developer" and not openai_host else item.role
    parts = item.content
    if all(isinstance(part, (InputText, OutputText)) for part in parts):
        return {"role": role, "content": message_text(parts)}
    return {"role": role, "content": [_part(part) for part in parts]}


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, (InputText, OutputText)):
        return {"type": "text", "text": part.text}
    if isinstance(part, InputImage):
        if not part.image_url:
            raise invalid("input", "Images must be sent by 'image_url' (a URL or a data URL) for this model.", "unsupported_value")
        return {"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail if part.detail != "original" else "high"}}
    if isinstance(part, InputFile):
        if isinstance(part.file_data, str):
            return {"type": "file", "file": {"file_data": part.file_data, **({"filename": part.filename} if isinstance(part.filename, str) else {})}}
        if isinstance(part.file_id, str):
            return {"type": "file", "file": {"file_id": part.file_id}}
        raise invalid("input", "Files must be sent as 'file_data' or 'file_id' for this model.", "unsupported_value")
    raise invalid("input", f"Content of type '{type(part).__name__}' cannot be sent to this model.", "unsupported_value")
