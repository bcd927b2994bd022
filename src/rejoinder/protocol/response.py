"""How a stored or freshly built Response is shown to a client, honouring `include`, and the
other bodies the API answers with (models, item lists, deletions), as typed structs.

Reasoning items keep their provider-opaque `encrypted_content` in storage always; it is shown
only when the client asks for `reasoning.encrypted_content`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
import orjson
from msgspec import Struct
from multidict import MultiMapping

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.request import Include

_INCLUDABLE = frozenset(get_args(Include))
_ENCRYPTED = "reasoning.encrypted_content"


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
    return orjson.dumps(shown(orjson.loads(response)))


def item_view(item: bytes, include: list[str] | None) -> bytes:
    """The JSON a client receives for a stored item (a conversation's), honouring `include`."""
    if b'"encrypted_content"' not in item or (include and _ENCRYPTED in include):
        return item
    return orjson.dumps(without_encrypted(orjson.loads(item)))


def shown(response: dict[str, Any]) -> dict[str, Any]:
    """A Response (as a dict) without its reasoning items' opaque state, for a client that did
    not ask for it; the same dict when there is none."""
    if not any("encrypted_content" in item for item in response["output"]):
        return response
    return {**response, "output": [without_encrypted(item) for item in response["output"]]}


def without_encrypted(item: dict[str, Any]) -> dict[str, Any]:
    """A reasoning item without its opaque state, for a client that did not ask for it."""
    if item.get("type") == "reasoning" and "encrypted_content" in item:
        return {k: v for k, v in item.items() if k != "encrypted_content"}
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


encode_body = msgspec.json.Encoder().encode
