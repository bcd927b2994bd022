"""Conversations API bodies (`/v1/conversations…`): what a client sends, decoded and checked,
and the objects the API answers with."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import Struct

from rejoinder.protocol.checks import decode_body
from rejoinder.protocol.errors import invalid
from rejoinder.protocol.request import check_metadata, decode_input

MAX_ITEMS = 20  # items one request may add, as OpenAI allows


class CreateConversation(Struct):
    items: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None


class UpdateConversation(Struct):
    metadata: dict[str, str]


class AddItems(Struct):
    items: list[dict[str, Any]]


class Conversation(Struct):
    id: str
    created_at: int
    metadata: msgspec.Raw
    object: Literal["conversation"] = "conversation"


class ConversationDeleted(Struct):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


_create = msgspec.json.Decoder(CreateConversation)
_update = msgspec.json.Decoder(UpdateConversation)
_add = msgspec.json.Decoder(AddItems)


def decode_create(raw: bytes) -> tuple[list, dict[str, str]]:
    """`POST /v1/conversations`: its items (canonical, references unresolved) and metadata."""
    body = decode_body(_create, raw or b"{}")
    metadata = body.metadata or {}
    check_metadata(metadata)
    return _items(body.items or []), metadata


def decode_update(raw: bytes) -> dict[str, str]:
    body = decode_body(_update, raw)
    check_metadata(body.metadata)
    return body.metadata


def decode_add(raw: bytes) -> list:
    items = _items(decode_body(_add, raw).items)
    if not items:
        raise invalid("items", "Invalid 'items': expected at least one item.")
    return items


def _items(raw: list[dict[str, Any]]) -> list:
    if len(raw) > MAX_ITEMS:
        raise invalid("items", f"Invalid 'items': expected at most {MAX_ITEMS} items, got {len(raw)}.", "array_above_max_length")
    return decode_input(raw, "items")
