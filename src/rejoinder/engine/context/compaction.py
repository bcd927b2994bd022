"""Compaction: a context summarized by the turn's own model into one sealed `compaction` item.

`POST /v1/responses/compact` answers the context's user messages followed by the item; a later
turn whose input holds it sees the user messages before it and its summary in place of the
rest (`context.model_view`), on whichever provider runs that turn. With
`context_management: [{"type": "compaction", "compact_threshold": N}]`, a turn whose context
passes N tokens is compacted first: its earlier items are summarized, and the item is the
first of its output, so the chain after it carries the summary.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from rejoinder.engine.skeleton import usage
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import Compaction, InputText, Item, Message
from rejoinder.providers import state
from rejoinder.providers.base import ModelRequest, Provider, Usage, text_of, used

INSTRUCTIONS = (
    "You are performing a context checkpoint compaction. Write notes for your own later use that let the conversation go on "
    "without its earlier turns: the user's goals, constraints and preferences, decisions made, facts learned, results of tool "
    "calls that still matter, and what is still open. Be complete but concise. Write only the notes."
)
_ASK = "Write the checkpoint notes now."


async def summarize(provider: Provider, request: ModelRequest) -> tuple[str, Usage]:
    """The model's summary of `request`'s items, and what it cost."""
    settings = msgspec.structs.replace(request.settings, instructions=INSTRUCTIONS, choice="none", hosted_tools=[], text=None, reasoning=None)
    asked = [*request.items, Message(role="user", content=[InputText(_ASK)], id=new_id("msg"), status="completed")]
    deltas = [delta async for batch in provider.stream(ModelRequest(settings, asked, request.upstream_model, False)) for delta in batch]
    return text_of(deltas), used(deltas)


def item(summary: str) -> Compaction:
    return Compaction(state.seal("compaction", {"summary": summary}), id=new_id("cmp"))


def kept(context: list[Item]) -> list[Item]:
    """What a compaction keeps as it was: the user's messages."""
    return [entry for entry in context if isinstance(entry, Message) and entry.role == "user"]


def compacted_response(context: list[Item], summary: str, cost: Usage) -> dict[str, Any]:
    """The body of `POST /v1/responses/compact`."""
    output = [*kept(context), item(summary)]
    return {"id": new_id("resp"), "object": "response.compaction", "output": output, "created_at": int(time.time()), "usage": usage(cost)}
