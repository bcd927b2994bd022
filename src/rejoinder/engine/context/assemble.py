"""What the model sees: the earlier chain's items (or a conversation's, see `engine.context.history`),
then this request's input.

`previous_response_id` brings back every input and output item of the chain (never its
`instructions`); `item_reference` entries are replaced by the stored items they name. When a
response in the chain was deleted, a turn on the chain is refused with a 400 rather than
silently given a shorter history.
"""

from __future__ import annotations

import orjson

from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.items import (
    Compaction,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputText,
    Item,
    ItemReference,
    Message,
    Reasoning,
    decode_item,
)
from rejoinder.protocol.tools import upstream_name
from rejoinder.providers import state
from rejoinder.store.repository import MissingAncestor, Store


def check_sealed(items: list[Item]) -> None:
    """Every `encrypted_content` a client sends must open with this gateway's keys, whichever
    provider it belongs to: a forged or altered one is refused before any provider runs."""
    for i, item in enumerate(items):
        if isinstance(item, (Reasoning, Compaction)) and isinstance(item.encrypted_content, str):
            try:
                state.check(item.encrypted_content)
            except state.SealError as exc:
                param = f"input[{i}].encrypted_content"
                raise invalid(param, f"Invalid '{param}': {exc}.", "invalid_encrypted_content") from None


def check_calls(own_input: list[Item], context: list[Item]) -> None:
    """Every tool output a request sends answers a call in its context (earlier turns or its own
    input), as OpenAI requires: an output that answers nothing is a 400, not a turn the model
    would see without its call."""
    outputs = [(i, item) for i, item in enumerate(own_input) if type(item) in _OUTPUTS]
    if not outputs:
        return
    calls = {item.call_id for item in context if type(item) in _CALLS}
    for i, item in outputs:
        if item.call_id not in calls:
            raise invalid("input", f"No tool call found for function call output with call_id {item.call_id[:64]}.", "invalid_value")


_CALLS = frozenset((FunctionCall, CustomToolCall))
_OUTPUTS = frozenset((FunctionCallOutput, CustomToolCallOutput))


async def resolve_input(store: Store, items: list, project: str) -> list[Item]:
    """This request's own input with references (to its project's items) resolved: what
    `input_items` will list."""
    references = [item.id for item in items if isinstance(item, ItemReference)]
    if not references:
        return items
    found = await store.items_by_id(references, project)
    resolved = []
    for i, item in enumerate(items):
        if isinstance(item, ItemReference):
            if item.id not in found:
                raise invalid(f"input[{i}].id", f"Item with id '{item.id}' not found.", "item_not_found")
            item = decode_item(found[item.id])
        resolved.append(item)
    return resolved


async def earlier_items(store: Store, previous_response_id: str | None, project: str) -> list[Item]:
    if not previous_response_id:
        return []
    try:
        bodies = await store.chain(previous_response_id, project)
    except MissingAncestor as gone:  # never a silent cut: the history the chain was built on is gone
        raise ApiError(
            400,
            f"Previous response '{previous_response_id}' was built on response '{gone.response_id}', which has been deleted: "
            "the conversation's history is incomplete. Start a new chain, or send the history as input.",
            param="previous_response_id",
            code="previous_response_not_found",
        ) from None
    if bodies is None:
        raise ApiError(
            404,
            f"Previous response with id '{previous_response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return [decode_item(body) for body in bodies]


_RECAST = frozenset((CustomToolCall, CustomToolCallOutput, Compaction))
SUMMARY_HEADING = "Summary of the conversation so far (a context checkpoint):\n"


def model_view(items: list[Item]) -> list[Item]:
    """The items as providers take them: custom tool calls and their outputs become function
    calls with one string argument, `input`, the way custom tools are offered upstream; a call
    of a namespace's tool takes the name that tool is offered under; a compaction stands in for
    everything before it but the user's messages, as a user message holding its summary."""
    if not any(type(item) in _RECAST or (type(item) is FunctionCall and isinstance(item.namespace, str)) for item in items):
        return items
    return [_as_offered(item) for item in compacted(items)]


def compacted(items: list[Item]) -> list[Item]:
    last = max((i for i, item in enumerate(items) if isinstance(item, Compaction)), default=None)
    if last is None:
        return items
    summary = (state.unseal("compaction", items[last].encrypted_content) or {}).get("summary", "")
    kept = [item for item in items[:last] if isinstance(item, Message) and item.role == "user"]
    return [*kept, Message(role="user", content=[InputText(SUMMARY_HEADING + summary)], id=items[last].id, status="completed"), *items[last + 1 :]]


def _as_offered(item: Item) -> Item:
    if isinstance(item, (FunctionCall, CustomToolCall)):
        name = upstream_name(item.namespace, item.name) if isinstance(item.namespace, str) else item.name
        arguments = orjson.dumps({"input": item.input}).decode() if isinstance(item, CustomToolCall) else item.arguments
        return FunctionCall(item.call_id, name, arguments, id=item.id)
    if isinstance(item, CustomToolCallOutput):
        return FunctionCallOutput(item.call_id, item.output, id=item.id)
    return item
