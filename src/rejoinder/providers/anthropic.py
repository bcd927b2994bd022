"""Anthropic's Messages API (`POST {base_url}/messages`), streaming and not.

Out: instructions and every system/developer message become the top-level `system`; turns are
merged so roles alternate; function calls become `tool_use` blocks and their outputs
`tool_result` blocks in the next user turn; images and PDFs become `image` / `document` blocks;
`reasoning.effort` becomes an extended-thinking budget; structured output becomes a tool the
model is made to call, whose input is returned as plain `output_text`.

Back: `text`, `tool_use` and `thinking` blocks become text, tool-call and reasoning-summary
blocks; a thinking block's signature (and any `redacted_thinking`) is sealed into the reasoning
item's `encrypted_content` and replayed on the next turn, so tool use with thinking works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.items import (
    FunctionCall,
    FunctionCallOutput,
    InputFile,
    InputImage,
    InputText,
    Message,
    OutputText,
    Reasoning,
    message_text,
    spoken_text,
)
from rejoinder.protocol.request import TextFormatJsonObject, TextFormatJsonSchema
from rejoinder.protocol.tools import NamedFunction
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, ReasoningEnd, Usage
from rejoinder.providers.failures import read_json, stream_error
from rejoinder.providers.http import EndsWithAnEvent, Limits, Upstream, versioned
from rejoinder.providers.state import seal, unseal
from rejoinder.providers.translate import arguments, data_url, offered_tools, sampling

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192
THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32000}
_STOP = {"max_tokens": "length", "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}


class Anthropic:
    runs_hosted_tools = False

    def __init__(self, base_url: str | None, api_key: str | None, limits: Limits) -> None:
        self.url = versioned(base_url or DEFAULT_BASE_URL, "v1") + "/messages"
        self.api_key = api_key
        headers = {"Content-Type": "application/json", "anthropic-version": VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self.upstream = Upstream(headers, api_key, limits)

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        body, format_tool = messages_body(request)
        async with self.upstream.call(self.url, orjson.dumps(body), request.stream) as reply:
            translator = _Translator(format_tool)
            if not request.stream:
                yield translator.message(read_json(await reply.body()))
                return
            async for deltas in reply.deltas(lambda data: translator.event(read_json(data), self.api_key), translator):
                yield deltas

    async def count_tokens(self, request: ModelRequest) -> int:
        """Anthropic's own count (`/v1/messages/count_tokens`) of the request as it would go."""
        body, _ = messages_body(request)
        return await self.upstream.count(self.url + "/count_tokens", {key: body[key] for key in _COUNTED if key in body}, "input_tokens")


class _Translator(EndsWithAnEvent):
    """Messages API content blocks → deltas, keyed by the block's `index`."""

    def __init__(self, format_tool: str | None) -> None:
        self.format_tool = format_tool
        self.blocks: dict[int, dict[str, Any]] = {}  # index → {"kind", "text" chunks, "signature", …}
        self.usage = Usage()
        self.stop = "stop"
        self.called_tool = False

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
            elif kind == "tool_use":
                out += self._delta(index, {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()})
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
        state["kind"] = "ignored"  # server tools and their results are not modelled here
        return []

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
        return [BlockEnd(name)]

    def _usage(self, usage: dict[str, Any]) -> None:
        read = usage.get("cache_read_input_tokens") or 0
        written = usage.get("cache_creation_input_tokens") or 0
        if "input_tokens" in usage:
            self.usage.input_tokens = (usage.get("input_tokens") or 0) + read + written
            self.usage.cached_tokens = read
            self.usage.cache_write_tokens = written
        if "output_tokens" in usage:
            self.usage.output_tokens = usage.get("output_tokens") or 0

    def _finish(self) -> Finish:
        reason = self.stop
        if reason == "tool_calls" and not self.called_tool:
            reason = "stop"  # only the structured-output tool was called: that is the answer
        return Finish(reason, self.usage)  # type: ignore[arg-type]


_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def messages_body(request: ModelRequest) -> tuple[dict[str, Any], str | None]:
    """The Messages API request, and the name of the structured-output tool if one is used."""
    params = request.settings
    system, messages = _conversation(request)
    body: dict[str, Any] = {"model": request.upstream_model, "messages": messages}
    max_tokens = params.max_output_tokens
    effort = params.reasoning.effort if params.reasoning else None
    budget = THINKING_BUDGET.get(effort or "")
    if budget is not None:
        max_tokens = max_tokens or budget + DEFAULT_MAX_TOKENS
        budget = min(budget, max_tokens - 1)
        if budget < 1024:  # below Anthropic's minimum budget: answer without thinking
            budget = None
    body["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:  # Anthropic refuses sampling settings alongside thinking
        if params.temperature is not None:
            body["temperature"] = params.temperature
        if params.top_p is not None:
            body["top_p"] = params.top_p
    chosen = sampling(params, "anthropic", ("stop",))
    if "stop" in chosen:
        body["stop_sequences"] = chosen["stop"]
    user = params.safety_identifier or params.user
    if user:
        body["metadata"] = {"user_id": user}
    if request.stream:
        body["stream"] = True
    format_tool = _tools(params, body, thinking=budget is not None)
    if system:
        body["system"] = "\n\n".join(system)
    return body, format_tool


def _tools(params: Any, body: dict[str, Any], thinking: bool) -> str | None:
    tools, choice = offered_tools(params)
    declared = [
        {"name": t.name, **({"description": t.description} if t.description else {}), "input_schema": t.parameters or {"type": "object", "properties": {}}}
        for t in tools
    ]
    fmt = params.text.format if params.text is not None else None
    format_tool = None
    if isinstance(fmt, (TextFormatJsonSchema, TextFormatJsonObject)):
        format_tool = fmt.name if isinstance(fmt, TextFormatJsonSchema) else "json_response"
        schema = fmt.schema if isinstance(fmt, TextFormatJsonSchema) else {"type": "object"}
        description = (fmt.description if isinstance(fmt, TextFormatJsonSchema) else None) or "Give the final answer as this tool's input."
        declared.append({"name": format_tool, "description": description, "input_schema": schema})
    if not declared:
        return None
    body["tools"] = declared
    if format_tool and not tools and not thinking:
        body["tool_choice"] = {"type": "tool", "name": format_tool}
        return format_tool
    if choice == "none" and format_tool:
        choice = "auto"  # the structured answer still arrives through its tool
    tool_choice: dict[str, Any] = (
        {"type": "tool", "name": choice.name} if isinstance(choice, NamedFunction) else {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    )
    if thinking and tool_choice["type"] in ("any", "tool"):
        tool_choice = {"type": "auto"}  # Anthropic allows only auto or none with thinking
    if params.parallel_tool_calls is False and tool_choice["type"] != "none":
        tool_choice["disable_parallel_tool_use"] = True
    body["tool_choice"] = tool_choice
    return format_tool


def _conversation(request: ModelRequest) -> tuple[list[str], list[dict[str, Any]]]:
    system = [request.settings.instructions] if request.settings.instructions else []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for item in request.items:
        if isinstance(item, Message):
            if item.role in ("system", "developer"):
                system.append(message_text(item.content))
            elif item.role == "assistant":
                text = spoken_text(item.content)
                if text:
                    add("assistant", [{"type": "text", "text": text}])
            else:
                add("user", [_block(part) for part in item.content])
        elif isinstance(item, FunctionCall):
            add("assistant", [{"type": "tool_use", "id": item.call_id, "name": item.name, "input": arguments(item.arguments)}])
        elif isinstance(item, FunctionCallOutput):
            output = item.output if isinstance(item.output, str) else [_block(part) for part in item.output]
            add("user", [{"type": "tool_result", "tool_use_id": item.call_id, "content": output}])
        elif isinstance(item, Reasoning):
            blocks = unseal("anthropic", item.encrypted_content if isinstance(item.encrypted_content, str) else None)
            if blocks:
                add("assistant", blocks)
    return system, messages


def _block(part: Any) -> dict[str, Any]:
    if isinstance(part, (InputText, OutputText)):
        return {"type": "text", "text": part.text}
    if isinstance(part, InputImage):
        if not isinstance(part.image_url, str):
            raise invalid("input", "Images must be sent by 'image_url' (a URL or a data URL) for this model.", "unsupported_value")
        inline = data_url(part.image_url)
        source = {"type": "base64", "media_type": inline[0], "data": inline[1]} if inline else {"type": "url", "url": part.image_url}
        return {"type": "image", "source": source}
    if isinstance(part, InputFile):
        if isinstance(part.file_data, str):
            inline = data_url(part.file_data)
            if inline is None:
                raise invalid("input", "'file_data' must be a base64 data URL.")
            return {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
        if isinstance(part.file_url, str):
            return {"type": "document", "source": {"type": "url", "url": part.file_url}}
        raise invalid("input", "Files must be sent as 'file_data' or 'file_url' for this model.", "unsupported_value")
    raise invalid("input", f"Content of type '{type(part).__name__}' cannot be sent to this model.", "unsupported_value")
