"""Anthropic prompt caching: the `cache_control` breakpoints a Messages API body carries.

Anthropic caches nothing unless a request marks where a reusable prefix ends, and then bills a
later request's prefix at a tenth of the input price when an earlier one (within the TTL) marked
the same place. An agent resends a long, stable prefix every turn (tools, instructions, the
history so far), so with the model's `prompt_caching: auto` (the default) the gateway marks, in
Anthropic's order of tools, system and messages:

- the end of the stable prefix: the system prompt, or the last tool when there is none;
- the end of the previous call: the last block of the user turn before the latest assistant
  turn, which is where that call (a chain's previous response, a tool round) put its last mark;
- the end of this call, for the next one to read.

A mark whose prefix is shorter than the model family's minimum could never be cached, so none
is placed there (the estimate is a JSON byte count over four, without loading a tokenizer).
A client's own breakpoints (OpenAI's `prompt_cache_breakpoint` on an input part) are marks too;
with `prompt_cache_options.mode: explicit` they are the only ones. Anthropic takes four at most:
the earliest of the client's go first, then the earliest of the gateway's. TTL: five minutes
(Anthropic's default) unless the request asks for longer (`prompt_cache_retention: 24h`, or
`prompt_cache_options.ttl`), then an hour, the longest Anthropic offers.
"""

from __future__ import annotations

from typing import Any

import orjson

from rejoinder.providers.base import Settings
from rejoinder.providers.translate import long_cache, minimum_tokens

MAX_BREAKPOINTS = 4
# The shortest prefix Anthropic caches, in tokens, by the longest prefix of the model's name.
MINIMUM_TOKENS = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-7", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MINIMUM = 1024
_UNMARKABLE = frozenset(("thinking", "redacted_thinking"))  # Anthropic refuses cache_control on them
CLIENT_MARK = "__client_breakpoint__"  # set on a block by the body's builder where the client asked for one


def place(body: dict[str, Any], settings: Settings, caching: str) -> None:
    """Put the request's breakpoints on `body` (see the module's docstring); with `caching`
    off, none, the client's included."""
    system = {"type": "text", "text": body["system"]} if "system" in body else None  # the system prompt as a block, should it be marked
    slots = _slots(body, system)
    client = [i for i, (block, _) in enumerate(slots) if block.pop(CLIENT_MARK, False)]
    if caching == "off" or not slots:
        return
    options = settings.prompt_cache_options
    own = [] if options is not None and options.mode == "explicit" else _own(body, slots, minimum_tokens(MINIMUM_TOKENS, body["model"], DEFAULT_MINIMUM))
    marks = sorted(set(client) | set(own))
    while len(marks) > MAX_BREAKPOINTS:
        marks.remove(next((i for i in marks if i in client and i not in own), marks[0]))
    control = {"type": "ephemeral", "ttl": "1h"} if long_cache(settings) else {"type": "ephemeral"}  # Anthropic's default: five minutes
    for i in marks:
        slots[i][0]["cache_control"] = control
    if system is not None and "cache_control" in system:
        body["system"] = [system]


def _slots(body: dict[str, Any], system: dict[str, Any] | None) -> list[tuple[dict[str, Any], int]]:
    """Every block a breakpoint may go on, in Anthropic's order, with the estimated tokens of
    the prefix it ends."""
    slots: list[tuple[dict[str, Any], int]] = []
    size = 0
    for tool in body.get("tools", ()):
        size += len(orjson.dumps(tool))
        slots.append((tool, size // 4))
    if system is not None:
        size += len(system["text"].encode())
        slots.append((system, size // 4))
    for message in body["messages"]:
        for block in message["content"]:
            size += len(orjson.dumps(block))
            if block.get("type") not in _UNMARKABLE and (block.get("type") != "text" or block.get("text")):
                slots.append((block, size // 4))
    return slots


def _own(body: dict[str, Any], slots: list[tuple[dict[str, Any], int]], minimum: int) -> list[int]:
    """The gateway's marks: the stable prefix's end, the previous call's end, this call's end,
    each where its prefix is long enough to be cached."""
    index = {id(block): i for i, (block, _) in enumerate(slots)}
    messages = body["messages"]
    candidates: list[int] = []
    first_message = next((index[id(block)] for message in messages for block in message["content"] if id(block) in index), len(slots))
    if first_message > 0:
        candidates.append(first_message - 1)  # the system prompt, or the last tool
    assistant = max((i for i, message in enumerate(messages) if message["role"] == "assistant"), default=None)
    if assistant is not None:
        earlier = [index[id(block)] for message in messages[:assistant] if message["role"] == "user" for block in message["content"] if id(block) in index]
        if earlier:
            candidates.append(earlier[-1])
    if first_message < len(slots):
        candidates.append(len(slots) - 1)
    return sorted({i for i in candidates if slots[i][1] >= minimum})
