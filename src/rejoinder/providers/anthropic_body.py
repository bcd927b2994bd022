"""The request side of Anthropic's Messages API: a turn as a Messages API body.

Instructions and every system/developer message become the top-level `system`; turns are merged
so roles alternate; function calls become `tool_use` blocks and their outputs `tool_result`
blocks in the next user turn; images and PDFs become `image` / `document` blocks;
`reasoning.effort` becomes an extended-thinking budget; structured output becomes a tool the
model is made to call; web search becomes Anthropic's server tool.
"""

from __future__ import annotations

from typing import Any

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
from rejoinder.providers import anthropic_cache, web_search
from rejoinder.providers.base import ModelRequest
from rejoinder.providers.state import unseal
from rejoinder.providers.translate import arguments, data_url, decoded_text, is_text, marked_for_cache, offered_tools, sampling

DEFAULT_MAX_TOKENS = 8192
THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32000}

COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking")  # what count_tokens takes


def messages_body(request: ModelRequest, caching: str = "auto") -> tuple[dict[str, Any], str | None]:
    """The Messages API request, and the name of the structured-output tool if one is used;
    its prompt-cache breakpoints by `caching` (the model's `prompt_caching`)."""
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
    search = web_search.wants_search(params.hosted_tools)
    if search is not None:
        body.setdefault("tools", []).append(web_search.anthropic_tool(search))
        if isinstance(params.choice, dict):  # web search forced
            body["tool_choice"] = {"type": "tool", "name": "web_search"}
    if system:
        body["system"] = "\n\n".join(system)
    anthropic_cache.place(body, params, caching)
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
    if isinstance(choice, dict):  # a hosted tool forced: see messages_body
        choice = "auto"
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
                add("user", [_marked(part, _block(part)) for part in item.content])
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


def _marked(part: Any, block: dict[str, Any]) -> dict[str, Any]:
    """The block, flagged where the client put a `prompt_cache_breakpoint` (see `anthropic_cache`)."""
    if marked_for_cache(part):
        block[anthropic_cache.CLIENT_MARK] = True
    return block


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
            if is_text(inline[0]):  # Anthropic reads plain text documents as text, and only PDFs as base64
                return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": decoded_text(inline[1])}}
            return {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
        if isinstance(part.file_url, str):
            return {"type": "document", "source": {"type": "url", "url": part.file_url}}
        raise invalid("input", "Files must be sent as 'file_data' or 'file_url' for this model.", "unsupported_value")
    raise invalid("input", f"Content of type '{type(part).__name__}' cannot be sent to this model.", "unsupported_value")
