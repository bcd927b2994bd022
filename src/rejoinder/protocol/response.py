"""The Response object, typed from the builder to the store to the wire, and the other bodies the
API answers with (models, item lists, deletions).

A Response's output items are the same structs as input items (`protocol.items`), and a hosted
tool's record a `HostedItem`; one encoder writes them all, once per form. Reasoning items keep
their provider-opaque `encrypted_content` in storage always; it is shown only when the client
asks for `reasoning.encrypted_content`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
from msgspec import UNSET, Struct, UnsetType
from multidict import MultiMapping

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.items import HostedItem, Reasoning, decode_item
from rejoinder.protocol.request import Include

_INCLUDABLE = frozenset(get_args(Include))
_ENCRYPTED = "reasoning.encrypted_content"


class ResponseError(Struct):
    code: str
    message: str


class IncompleteDetails(Struct):
    reason: str | None


class InputTokensDetails(Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(Struct):
    reasoning_tokens: int = 0


class ResponseUsage(Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ConversationRef(Struct):
    id: str


class Response(Struct, kw_only=True, gc=False):
    """The Response object as OpenAI returns it. Each field has a default so that a stored one
    from an older release still reads. Never part of a reference cycle: not tracked by the
    garbage collector (see `protocol.items._Nullable`)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int = 0
    status: str = "in_progress"
    background: bool = False
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: Any = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str = ""
    output: list[Any] = []  # items (`protocol.items`) and `HostedItem`s
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: Any = UNSET  # as applied: echoed when the request set it
    reasoning: Any = None
    safety_identifier: str | None = None
    service_tier: str = "default"
    store: bool = True
    temperature: float = 1.0
    text: Any = msgspec.field(default_factory=lambda: {"format": {"type": "text"}, "verbosity": "medium"})
    tool_choice: Any = "auto"
    tools: list[Any] = []
    top_logprobs: int = 0
    top_p: float = 1.0
    truncation: str = "disabled"
    metadata: dict[str, str] = {}
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    usage: ResponseUsage | None = None
    user: str | UnsetType = UNSET  # the spec allows a string or nothing
    conversation: ConversationRef | UnsetType = UNSET
    prompt: Any = UNSET


class _Stored(Response, kw_only=True):
    """A stored Response as read: its items still JSON, each then read as input items are."""

    output: list[msgspec.Raw] = []


def _hosted(value: Any) -> Any:
    if isinstance(value, HostedItem):
        return value.raw
    raise TypeError(f"cannot encode {type(value).__name__}")


encode = msgspec.json.Encoder(enc_hook=_hosted).encode
"""JSON for everything the gateway emits and stores: Responses, their items, events (dicts
holding those), lists."""

_read_stored = msgspec.json.Decoder(_Stored).decode


def decode_response(body: bytes) -> Response:
    """A stored Response, typed."""
    stored = _read_stored(body)
    stored.output = [decode_item(raw) for raw in stored.output]  # type: ignore[misc]
    return stored


def parse_include(query: MultiMapping[str]) -> list[str]:
    """`include[]=a&include=b` from a query string, each value checked against the spec's list."""
    values = query.getall("include[]", []) + query.getall("include", [])
    for value in values:
        if value not in _INCLUDABLE:
            raise invalid("include", f"Invalid 'include' value: '{value}'.")
    return values


def view(response: bytes, include: list[str] | None) -> bytes:
    """The JSON a client receives for a Response (given as its stored JSON)."""
    if b'"encrypted_content"' not in response or (include and _ENCRYPTED in include):
        return response
    return encode(shown(decode_response(response)))


def item_view(item: bytes, include: list[str] | None) -> bytes:
    """The JSON a client receives for a stored item (a conversation's), honouring `include`."""
    if b'"encrypted_content"' not in item or (include and _ENCRYPTED in include):
        return item
    return encode(without_encrypted(decode_item(item)))


def shown(response: Response) -> Response:
    """A Response without its reasoning items' opaque state, for a client that did not ask for
    it; the same Response when there is none."""
    if not any(isinstance(item, Reasoning) and item.encrypted_content for item in response.output):
        return response
    return msgspec.structs.replace(response, output=[without_encrypted(item) for item in response.output])


def without_encrypted(item: Any) -> Any:
    """A reasoning item without its opaque state, for a client that did not ask for it."""
    if isinstance(item, Reasoning) and item.encrypted_content:
        return msgspec.structs.replace(item, encrypted_content=UNSET)
    return item


class Model(Struct):
    id: str
    owned_by: str
    object: Literal["model"] = "model"
    created: int = 0


class ModelList(Struct):
    data: list[Model]
    object: Literal["list"] = "list"


class Deleted(Struct):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


class ItemList(Struct):
    """A page of items; each is its stored JSON, embedded as it is (`msgspec.Raw`). An empty
    page's `first_id` and `last_id` are empty strings: the spec and the SDK type them as strings."""

    data: list[msgspec.Raw]
    first_id: str
    last_id: str
    has_more: bool
    object: Literal["list"] = "list"
