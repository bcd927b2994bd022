"""The Response object's own fields: what it echoes of the request when it starts, and the
usage it reports when it ends. The builder (`engine.builder`) fills in the rest."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from msgspec import UNSET

from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.request import PromptCacheOptions, Request, TextFormatJsonSchema, TextFormatText
from rejoinder.protocol.response import ConversationRef, InputTokensDetails, OutputTokensDetails, Response, ResponseUsage
from rejoinder.providers.base import Usage


def skeleton(request: Request) -> Response:
    """The Response object as OpenAI returns it, every request field echoed, status in_progress."""
    params = request.body
    text = params.text
    fmt = text.format if text is not None else TextFormatText()
    text_echo: dict[str, Any] = {"format": msgspec.to_builtins(fmt), "verbosity": (text.verbosity if text else None) or "medium"}
    if isinstance(fmt, TextFormatJsonSchema):
        if fmt.description is None:
            del text_echo["format"]["description"]
        text_echo["format"]["strict"] = bool(fmt.strict)  # OpenAI's default; Open Responses wants a boolean
    reasoning = params.reasoning
    return Response(
        id=new_id("resp"),
        created_at=int(time.time()),
        instructions=params.instructions,
        max_output_tokens=params.max_output_tokens,
        max_tool_calls=params.max_tool_calls,
        model=params.model,
        output=[],
        parallel_tool_calls=params.parallel_tool_calls if params.parallel_tool_calls is not None else True,
        previous_response_id=params.previous_response_id,
        prompt_cache_key=params.prompt_cache_key,
        prompt_cache_options=_cache_options(params.prompt_cache_options),
        reasoning={"effort": reasoning.effort if reasoning else None, "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None},
        safety_identifier=params.safety_identifier,
        service_tier="default" if params.service_tier in (None, "auto") else params.service_tier,
        store=bool(params.store),
        temperature=params.temperature if params.temperature is not None else 1.0,
        text=text_echo,
        tool_choice=params.tool_choice,
        tools=request.tools.echo,
        top_logprobs=params.top_logprobs or 0,
        top_p=params.top_p if params.top_p is not None else 1.0,
        truncation=params.truncation or "disabled",
        metadata=params.metadata or {},
        presence_penalty=params.presence_penalty or 0.0,
        frequency_penalty=params.frequency_penalty or 0.0,
        user=params.user if params.user is not None else UNSET,
        conversation=ConversationRef(request.conversation) if request.conversation is not None else UNSET,
        prompt=msgspec.to_builtins(params.prompt) if params.prompt is not None else UNSET,
    )


def _cache_options(options: PromptCacheOptions | None) -> Any:
    """`prompt_cache_options` as applied (OpenAI's defaults filled in), when the request set it."""
    if options is None:
        return UNSET
    return {"ttl": options.ttl or "30m", "mode": options.mode or "implicit"}


def usage(usage: Usage) -> ResponseUsage:
    """The Response's `usage`; counts no real upstream could report are an upstream fault."""
    if not all(type(n) is int and 0 <= n < 2**53 for n in msgspec.structs.astuple(usage)):
        raise ApiError(502, "The upstream model provider reported token counts this gateway could not read.", type="server_error", code="upstream_error")
    return ResponseUsage(
        input_tokens=usage.input_tokens,
        input_tokens_details=InputTokensDetails(usage.cached_tokens, usage.cache_write_tokens),
        output_tokens=usage.output_tokens,
        output_tokens_details=OutputTokensDetails(usage.reasoning_tokens),
        total_tokens=usage.input_tokens + usage.output_tokens,
    )
