"""The Chat Completions request body for one model turn (`providers.openai_chat` sends it).

Instructions lead as a system message, consecutive function calls merge into one assistant
message with `tool_calls`, outputs become `tool` messages, images `image_url` parts, and
`text.format` becomes `response_format`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rejoinder.protocol.errors import invalid
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
from rejoinder.providers.base import ModelRequest
from rejoinder.providers.translate import SAMPLING, marked_for_cache, offered_tools, sampling


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
        if params.prompt_cache_options is not None:
            body["prompt_cache_options"] = msgspec.to_builtins(params.prompt_cache_options)
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
            if len(content) == 1 and type(content[0]) in _PLAIN and item.role != "developer" and not (openai_host and marked_for_cache(content[0])):
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
    if all(isinstance(part, (InputText, OutputText)) and not (openai_host and marked_for_cache(part)) for part in parts):
        return {"role": role, "content": message_text(parts)}
    return {"role": role, "content": [_part(part, openai_host) for part in parts]}


def _part(part: Any, openai_host: bool) -> dict[str, Any]:
    out = _plain_part(part)
    if openai_host and marked_for_cache(part):  # OpenAI's own breakpoints; other servers would refuse the field
        out["prompt_cache_breakpoint"] = {"mode": "explicit"}
    return out


def _plain_part(part: Any) -> dict[str, Any]:
    if isinstance(part, (InputText, OutputText)):
        return {"type": "text", "text": part.text}
    if isinstance(part, InputImage):
        if not part.image_url:
            raise invalid("input", "Images must be sent by 'image_url' (a URL or a data URL) for this model.", "unsupported_value")
        return {"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail if part.detail != "original" else "high"}}
    if isinstance(part, InputFile):
        if isinstance(part.file_data, str):
            return {"type": "file", "file": {"file_data": part.file_data, **({"filename": part.filename} if isinstance(part.filename, str) else {})}}
        raise invalid("input", "Files must be sent as 'file_data' or as a 'file_id' of this gateway's Files API for this model.", "unsupported_value")
    raise invalid("input", f"Content of type '{type(part).__name__}' cannot be sent to this model.", "unsupported_value")
