"""Context that fits the model's window: predicted before the upstream call, where the window
is known (`Deployment.context_window`).

Most requests are far from the window, and a token is at least one byte, so a turn whose items
are fewer bytes than the room left is not counted at all. Past that bound the provider counts
it (its own endpoint where it has one, see `Provider.count_tokens`). A turn that does not fit
is a 400 `context_length_exceeded` with `truncation: "disabled"` (the default); with `"auto"`
its oldest items are dropped until it fits with room for `max_output_tokens`: never the
instructions (they are not items), never a tool call without its output or the other way
round, never the newest item.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rejoinder.engine.router import Deployment
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.items import CustomToolCall, CustomToolCallOutput, FunctionCall, FunctionCallOutput, Item, Message, encode_item, message_text
from rejoinder.providers import tokens
from rejoinder.providers.base import ModelRequest, Provider, Usage

_PER_ITEM = 8  # bytes an item may cost beyond its JSON: role markers and separators
_DEFAULT_OUTPUT = 4096  # room kept for the answer when the request sets no max_output_tokens
_ATTEMPTS = 4


async def fit(deployment: Deployment, request: ModelRequest, truncation: str | None) -> ModelRequest:
    window = deployment.context_window
    if window is None:
        return request
    room = window - (request.settings.max_output_tokens or min(_DEFAULT_OUTPUT, window // 4))
    if _bytes(request) <= room:
        return request
    for _ in range(_ATTEMPTS):
        count = await deployment.provider.count_tokens(request)
        if count <= room:
            return request
        if truncation != "auto" or len(request.items) <= 1:
            raise ApiError(
                400,
                f"The input is {count} tokens; model '{deployment.name}' has a context window of {window} tokens, with "
                f"{window - room} kept for the output. Shorten the input, or set truncation to 'auto'.",
                param="input",
                code="context_length_exceeded",
            )
        request = msgspec.structs.replace(request, items=_drop_oldest(request.items, request.settings.instructions, count, count - room))
    raise ApiError(
        400, f"The input still does not fit model '{deployment.name}''s context window after truncation.", param="input", code="context_length_exceeded"
    )


async def exceeds(provider: Provider, request: ModelRequest, limit: int) -> bool:
    """Whether the request's input passes `limit` tokens (counted only when its size says it might)."""
    return _bytes(request) > limit and await provider.count_tokens(request) > limit


def _bytes(request: ModelRequest) -> int:
    """An upper bound of the request's input tokens: a token is at least a byte."""
    return sum(len(encode_item(item)) + _PER_ITEM for item in request.items) + len((request.settings.instructions or "").encode()) + _PER_ITEM


def _drop_oldest(items: list[Item], instructions: str | None, count: int, excess: int) -> list[Item]:
    """`items` without the oldest ones that hold at least `excess` tokens, a call and its output
    going together, the newest item always kept. Each item's share is a local count scaled to
    the provider's `count` of the whole."""
    estimates = [_estimate(item) for item in items]
    scale = count / (sum(estimates) + tokens.count_text(instructions or "") + 3)
    dropped_calls: set[str] = set()
    freed, start = 0.0, 0
    while start < len(items) - 1 and freed < excess:
        item = items[start]
        if isinstance(item, (FunctionCall, CustomToolCall)):
            dropped_calls.add(item.call_id)
        freed += estimates[start] * scale
        start += 1
    kept = [item for item in items[start:] if not (isinstance(item, (FunctionCallOutput, CustomToolCallOutput)) and item.call_id in dropped_calls)]
    while len(kept) > 1 and isinstance(kept[0], (FunctionCallOutput, CustomToolCallOutput)):  # an output whose call is gone
        kept.pop(0)
    return kept or items[-1:]


def estimated_usage(request: ModelRequest, output: list[Any]) -> Usage:
    """A call cut short before its upstream reported usage (steering ends it mid-stream): its
    input and what it had written, counted by the local BPE."""
    input_tokens = sum(map(_estimate, request.items)) + tokens.count_text(request.settings.instructions or "")
    written = [item for item in output if isinstance(item, (Message, FunctionCall, CustomToolCall))]
    return Usage(input_tokens=input_tokens, output_tokens=sum(map(_estimate, written)))


def _estimate(item: Item) -> int:
    """An item's tokens by the local BPE: its text, or its JSON when it has none."""
    if isinstance(item, Message):
        text = message_text(item.content)
    elif isinstance(item, (FunctionCall, CustomToolCall)):
        text = item.name + (item.arguments if isinstance(item, FunctionCall) else item.input)
    elif isinstance(item, (FunctionCallOutput, CustomToolCallOutput)):
        text = message_text(item.output)
    else:
        text = encode_item(item).decode()
    return tokens.count_text(text) + 4
