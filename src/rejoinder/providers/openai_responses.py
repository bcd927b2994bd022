"""Native Responses upstreams (`POST {base_url}/responses`): OpenAI, Azure OpenAI, vLLM …

The gateway keeps owning stored state, ids and the event sequence: the upstream gets the whole
context as input items with `store: false` (never a `previous_response_id`), and is asked for
`reasoning.encrypted_content`, which is sealed into our reasoning items and handed back on the
next turn. Its events and output items are read back into deltas like any other provider's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import orjson

from rejoinder.protocol.items import FunctionCall, FunctionCallOutput, HostedItem, Message, Reasoning
from rejoinder.protocol.tools import HOSTED_TOOL_TYPES, AllowedTools, NamedFunction, NamedMcp
from rejoinder.providers.base import (
    Annotation,
    BlockDelta,
    BlockEnd,
    BlockStart,
    Delta,
    Finish,
    HostedEvent,
    HostedOutput,
    HostedStart,
    ModelRequest,
    ReasoningEnd,
    Usage,
)
from rejoinder.providers.failures import read_json, stream_error
from rejoinder.providers.http import EndsWithAnEvent, Upstream, UpstreamLimits
from rejoinder.providers.state import seal, unseal
from rejoinder.providers.translate import sampling

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_PART_KIND = {"output_text": "text", "refusal": "refusal", "reasoning_text": "reasoning"}
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
_OWN_ITEMS = frozenset(("message", "function_call", "reasoning"))  # the kinds the gateway builds itself
# Progress events of hosted tools' items, relayed as they come.
_HOSTED_EVENTS = (
    "response.web_search_call.",
    "response.file_search_call.",
    "response.code_interpreter_call",
    "response.image_generation_call.",
    "response.mcp_call",
    "response.mcp_list_tools.",
)


class OpenAIResponses:
    hosted_tool_types = HOSTED_TOOL_TYPES  # web search, file search, MCP … run on the upstream's side

    def __init__(self, base_url: str | None, api_key: str | None, limits: UpstreamLimits) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/responses"
        self.api_key = api_key
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.upstream = Upstream(headers, api_key, limits)

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        async with self.upstream.call(self.url, orjson.dumps(responses_body(request)), request.stream) as reply:
            translator = _Translator()
            if not request.stream:
                yield translator.response(read_json(await reply.body()))
                return
            async for deltas in reply.deltas(lambda data: translator.event(read_json(data), self.api_key), translator):
                yield deltas

    async def count_tokens(self, request: ModelRequest) -> int:
        """OpenAI's own count (`/v1/responses/input_tokens`) of the request as it would go."""
        body = {key: value for key, value in responses_body(request).items() if key in _COUNTED}
        return await self.upstream.count(self.url + "/input_tokens", body, "input_tokens")


_COUNTED = ("model", "input", "instructions", "tools", "tool_choice", "text", "reasoning", "truncation", "parallel_tool_calls")


class _Translator(EndsWithAnEvent):
    """Upstream events → deltas; a block is named by its output index and part index."""

    def event(self, event: dict[str, Any], secret: str | None) -> list[Delta]:
        kind = event.get("type", "")
        at = event.get("output_index", 0)
        if kind in ("response.output_text.delta", "response.refusal.delta", "response.reasoning_text.delta"):
            return [BlockDelta(f"{at}.{event.get('content_index', 0)}", event.get("delta", ""), event.get("logprobs") or None)]
        if kind == "response.reasoning_summary_text.delta":
            return [BlockDelta(f"{at}.s{event.get('summary_index', 0)}", event.get("delta", ""))]
        if kind == "response.function_call_arguments.delta":
            return [BlockDelta(f"{at}", event.get("delta", ""))]
        if kind == "response.content_part.added":
            part_kind = _PART_KIND.get(event["part"].get("type"))
            return [BlockStart(f"{at}.{event.get('content_index', 0)}", part_kind)] if part_kind else []  # type: ignore[arg-type]
        if kind == "response.content_part.done":
            return [BlockEnd(f"{at}.{event.get('content_index', 0)}")] if event["part"].get("type") in _PART_KIND else []
        if kind == "response.output_text.annotation.added":
            return [Annotation(f"{at}.{event.get('content_index', 0)}", event["annotation"])]
        if kind == "response.reasoning_summary_part.added":
            return [BlockStart(f"{at}.s{event.get('summary_index', 0)}", "summary")]
        if kind == "response.reasoning_summary_part.done":
            return [BlockEnd(f"{at}.s{event.get('summary_index', 0)}")]
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") == "function_call":
                return [BlockStart(f"{at}", "tool_call", call_id=item.get("call_id", ""), name=item.get("name", ""))]
            return [] if item.get("type") in _OWN_ITEMS else [HostedStart(item)]
        if kind.startswith(_HOSTED_EVENTS) and "item_id" in event:
            fields = {k: v for k, v in event.items() if k not in ("type", "sequence_number", "item_id", "output_index")}
            return [HostedEvent(kind, event["item_id"], fields)]
        if kind == "response.output_item.done":
            item = event["item"]
            if item.get("type") == "function_call":
                return [BlockEnd(f"{at}")]
            if item.get("type") == "reasoning":
                return [_reasoning_end(item)]
            return [] if item.get("type") in _OWN_ITEMS else [HostedOutput(item)]
        if kind in ("response.completed", "response.incomplete"):
            self.done = True
            return [_finish(event["response"])]
        if kind == "response.failed":
            error = event["response"].get("error") or {}
            raise stream_error({"error": error}, secret)
        if kind == "error":
            raise stream_error(event, secret)
        return []

    def response(self, response: dict[str, Any]) -> list[Delta]:
        """A non-streaming Response, read as the equivalent event sequence."""
        if response.get("status") == "failed":
            raise stream_error({"error": response.get("error") or {}}, None)
        out: list[Delta] = []
        for at, item in enumerate(response.get("output") or []):
            kind = item.get("type")
            if kind == "message":
                for index, part in enumerate(item.get("content") or []):
                    part_kind = _PART_KIND.get(part.get("type"))
                    if part_kind:
                        text = part.get("text", part.get("refusal", ""))
                        out += [
                            BlockStart(f"{at}.{index}", part_kind),
                            BlockDelta(f"{at}.{index}", text, part.get("logprobs") or None),
                            *(Annotation(f"{at}.{index}", annotation) for annotation in part.get("annotations") or ()),
                            BlockEnd(f"{at}.{index}"),
                        ]  # type: ignore[arg-type]
            elif kind == "function_call":
                out += [
                    BlockStart(f"{at}", "tool_call", call_id=item.get("call_id", ""), name=item.get("name", "")),
                    BlockDelta(f"{at}", item.get("arguments", "")),
                    BlockEnd(f"{at}"),
                ]
            elif kind == "reasoning":
                for index, part in enumerate(item.get("summary") or []):
                    out += [BlockStart(f"{at}.s{index}", "summary"), BlockDelta(f"{at}.s{index}", part.get("text", "")), BlockEnd(f"{at}.s{index}")]
                for index, part in enumerate(item.get("content") or []):
                    out += [BlockStart(f"{at}.{index}", "reasoning"), BlockDelta(f"{at}.{index}", part.get("text", "")), BlockEnd(f"{at}.{index}")]
                out.append(_reasoning_end(item))
            else:
                out.append(HostedOutput(item))
        return out + [_finish(response)]


def _reasoning_end(item: dict[str, Any]) -> ReasoningEnd:
    encrypted = item.get("encrypted_content")
    return ReasoningEnd(seal("openai", {"id": item.get("id"), "encrypted_content": encrypted}) if encrypted else None)


def _finish(response: dict[str, Any]) -> Finish:
    usage = response.get("usage") or {}
    reason = "stop"
    if response.get("status") == "incomplete":
        reason = _INCOMPLETE.get((response.get("incomplete_details") or {}).get("reason") or "", "length")
    elif any(item.get("type") == "function_call" for item in response.get("output") or []):
        reason = "tool_calls"
    return Finish(
        reason,  # type: ignore[arg-type]
        Usage(
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
            reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
        ),
    )


def responses_body(request: ModelRequest) -> dict[str, Any]:
    params = request.settings
    include = [value for value in params.include or () if value != "reasoning.encrypted_content"]
    body: dict[str, Any] = {
        "model": request.upstream_model,
        "input": [entry for entry in map(_input_item, request.items) if entry is not None],
        "store": False,
        "include": include + ["reasoning.encrypted_content"],
    }
    if request.stream:
        body["stream"] = True
    sampling(params, "openai", (), verbosity=True)  # OpenAI's Responses API takes none of them
    for name in (
        "instructions",
        "temperature",
        "top_p",
        "max_output_tokens",
        "top_logprobs",
        "parallel_tool_calls",
        "safety_identifier",
        "user",
        "prompt_cache_key",
        "prompt_cache_retention",
        "truncation",
    ):
        value = getattr(params, name)
        if value is not None:
            body[name] = value
    if params.service_tier not in (None, "auto"):
        body["service_tier"] = params.service_tier
    if params.prompt_cache_options is not None:
        body["prompt_cache_options"] = msgspec.to_builtins(params.prompt_cache_options)
    if params.function_tools or params.hosted_tools:
        body["tools"] = [msgspec.to_builtins(tool) for tool in params.function_tools] + params.hosted_tools
        body["tool_choice"] = _tool_choice(params.choice)
    if params.text is not None:
        body["text"] = {k: v for k, v in msgspec.to_builtins(params.text).items() if v is not None}
    if params.reasoning is not None:
        body["reasoning"] = {k: v for k, v in msgspec.to_builtins(params.reasoning).items() if v is not None}
    return body


def _tool_choice(choice: Any) -> Any:
    """The choice among the tools as declared upstream (custom tools go as functions; MCP tools
    reach it only when the model passes them through)."""
    if isinstance(choice, NamedFunction):
        return {"type": "function", "name": choice.name}
    if isinstance(choice, NamedMcp):
        return msgspec.to_builtins(choice)
    if isinstance(choice, AllowedTools):
        tools = [msgspec.to_builtins(tool) if tool.type == "mcp" else {"type": "function", "name": tool.name} for tool in choice.tools]
        return {"type": "allowed_tools", "mode": choice.mode, "tools": tools}
    return choice


def _input_item(item: Any) -> dict[str, Any] | None:
    """One context item as the upstream takes it: our ids stay ours, reasoning goes back only
    with the upstream's own id and encrypted state."""
    if isinstance(item, Message):
        content = item.content if isinstance(item.content, str) else [msgspec.to_builtins(part) for part in item.content]
        return {"type": "message", "role": item.role, "content": content}
    if isinstance(item, FunctionCall):
        return {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}
    if isinstance(item, FunctionCallOutput):
        output = item.output if isinstance(item.output, str) else [msgspec.to_builtins(part) for part in item.output]
        return {"type": "function_call_output", "call_id": item.call_id, "output": output}
    if isinstance(item, HostedItem):
        return item.upstream_form()
    if isinstance(item, Reasoning):
        sealed = unseal("openai", item.encrypted_content if isinstance(item.encrypted_content, str) else None)
        if sealed:
            return {
                "type": "reasoning",
                "id": sealed["id"],
                "summary": [msgspec.to_builtins(part) for part in item.summary],
                "encrypted_content": sealed["encrypted_content"],
            }
    return None
