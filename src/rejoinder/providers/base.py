"""What every provider speaks: a provider-neutral request in, a stream of `Delta`s out.

Deltas travel in batches: a batch holds what arrived from the upstream together (one network
read), so the engine can answer it with one write to the client.

Each output block (text, refusal, reasoning, tool call) has an explicit start, deltas and an
end, keyed by a block id, so interleaved parallel tool calls stay apart and the builder knows
when an item is done. A stream ends with exactly one `Finish`, or raises `ApiError`; blocks
still open then end with it, as incomplete when it stopped at a limit or a filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from msgspec import Struct

from rejoinder.protocol.items import Item
from rejoinder.protocol.request import PromptCacheOptions, ReasoningParam, TextParam
from rejoinder.protocol.tools import FunctionTool

# text and refusal parts form a message; reasoning (raw reasoning text) and summary parts form
# a reasoning item; each tool call is an item of its own.
BlockKind = Literal["text", "refusal", "reasoning", "summary", "tool_call"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "steered"]  # steered: the gateway's own (WebSocket steering)


class Settings(Struct, kw_only=True):
    """What a turn asks of the model, provider-neutral; built by the engine from the request.
    Each provider maps these to its own wire format, or refuses what it cannot honour."""

    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    top_logprobs: int | None = None
    include: list[str] = []
    parallel_tool_calls: bool | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    service_tier: str | None = None
    truncation: str | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    function_tools: list[FunctionTool] = []  # custom tools included, as functions
    choice: Any = "auto"  # the validated tool choice
    hosted_tools: list[dict[str, Any]] = []  # tools only an upstream runs (the native provider's)
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    seed: int | None = None


class ModelRequest(Struct):
    """One model turn: what it asks of the model, its whole context and the upstream model."""

    settings: Settings
    items: list[Item]
    upstream_model: str
    stream: bool


class BlockStart(Struct):
    block: str
    kind: BlockKind
    call_id: str = ""
    name: str = ""


class BlockDelta(Struct):
    block: str
    text: str
    logprobs: list[dict[str, Any]] | None = None


class BlockEnd(Struct):
    block: str


class Annotation(Struct):
    """A citation (`url_citation` …) on a text block, as the upstream gives it."""

    block: str
    annotation: dict[str, Any]


class HostedStart(Struct):
    """An item of a tool the upstream runs itself (a web search, …) has begun: its JSON object
    (or, for the gateway's own items, the typed item)."""

    item: Any


class HostedEvent(Struct):
    """Progress of a hosted tool's item (`response.web_search_call.searching` …), relayed."""

    type: str
    item_id: str
    fields: dict[str, Any]


class HostedOutput(Struct):
    """A finished item of a tool the upstream ran itself, kept as it is (as `HostedStart`'s)."""

    item: Any


class ReasoningEnd(Struct):
    """The open reasoning item is complete; `encrypted` carries the provider's opaque state
    (sealed by `providers.state`), for the next turn. Opens an empty item if none is open."""

    encrypted: str | None = None


class Usage(Struct):
    """What upstream calls used: one call's, as its provider reports it, or the sum over every
    call made for one response (`added`)."""

    input_tokens: int = 0  # everything read, cached tokens included, as OpenAI counts
    output_tokens: int = 0  # everything written, reasoning included
    cached_tokens: int = 0  # read from the upstream's prompt cache
    cache_write_tokens: int = 0  # written to it (Anthropic bills these above the input price)
    reasoning_tokens: int = 0
    web_searches: int = 0  # searches the upstream ran and bills by the call (Anthropic's server tool)
    calls: int = 1  # upstream calls


def added(total: Usage | None, more: Usage | None) -> Usage | None:
    """The usage of two sets of upstream calls together."""
    if more is None or total is None:
        return more or total
    return Usage(*(getattr(total, name) + getattr(more, name) for name in Usage.__struct_fields__))


class Finish(Struct):
    reason: FinishReason
    usage: Usage | None = None


Delta = BlockStart | BlockDelta | BlockEnd | Annotation | ReasoningEnd | HostedStart | HostedEvent | HostedOutput | Finish


def used(deltas: list[Delta]) -> Usage:
    """The usage of one whole call's deltas (one call, when its upstream reported none)."""
    finish = deltas[-1] if deltas and isinstance(deltas[-1], Finish) else None
    return finish.usage if finish is not None and finish.usage is not None else Usage()


def text_of(deltas: list[Delta]) -> str:
    """The text of a whole turn's text blocks (not its refusals, reasoning or tool calls), for
    the gateway's own reading of an answer."""
    texts = {delta.block for delta in deltas if isinstance(delta, BlockStart) and delta.kind == "text"}
    return "".join(delta.text for delta in deltas if isinstance(delta, BlockDelta) and delta.block in texts)


class Provider(Protocol):
    """One upstream wire protocol. `stream` yields non-empty batches of deltas and raises
    `ApiError` for any upstream failure; `count_tokens` too."""

    hosted_tool_types: frozenset[str]  # the hosted tools (web search, file search, MCP …) it runs on its own side

    def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]: ...

    async def count_tokens(self, request: ModelRequest) -> int:
        """The input tokens `request` would cost: the provider's own count where it has one."""
        ...
