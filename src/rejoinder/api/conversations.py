"""The Conversations API: `/v1/conversations`, its items, and nothing else (a turn on a
conversation is `POST /v1/responses` with `conversation`, see `engine.run`).

Items added here are checked and given ids exactly as a response's input is, so an item reads
the same here, through a response's `input_items`, and as a model sees it.
"""

from __future__ import annotations

import time

import msgspec
import orjson
from aiohttp import web

from rejoinder.api.replies import STORE, item_list, json_response, page_query, project_of, read_body
from rejoinder.engine.context import check_sealed, resolve_input
from rejoinder.protocol.conversations import Conversation, ConversationDeleted, decode_add, decode_create, decode_update
from rejoinder.protocol.errors import ApiError, not_found
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.protocol.items import encode_item
from rejoinder.protocol.response import encode, item_view, parse_include
from rejoinder.store import conversations
from rejoinder.store.conversations import Row
from rejoinder.store.repository import Store


def conversation_not_found(conversation_id: str) -> ApiError:
    return not_found(f"Conversation with id '{conversation_id[:64]}' not found.")


def _id(request: web.Request, name: str = "conversation_id") -> str:
    value = request.match_info[name]
    if not is_valid_id(value):
        raise conversation_not_found(value) if name == "conversation_id" else not_found(f"Item with id '{value[:64]}' not found.")
    return value


def _shown(row: tuple[str, int, bytes]) -> web.Response:
    return json_response(encode(Conversation(row[0], row[1], msgspec.Raw(row[2]))))


async def rows(store: Store, items: list, project: str) -> list[Row]:
    """Items a client adds, as stored: references (to its project's items) resolved, sealed state checked."""
    check_sealed(items)
    return [(item.id, encode_item(item)) for item in await resolve_input(store, items, project)]


async def create_conversation(request: web.Request) -> web.Response:
    store = request.app[STORE]
    items, metadata = decode_create(await read_body(request))
    row = (new_id("conv"), int(time.time()), orjson.dumps(metadata))
    project = project_of(request)
    await store.write(conversations.create, row[0], project, *row[1:], await rows(store, items, project))
    return _shown(row)


async def get_conversation(request: web.Request) -> web.Response:
    conversation_id = _id(request)
    row = await request.app[STORE].transact(conversations.get, conversation_id, project_of(request))
    if row is None:
        raise conversation_not_found(conversation_id)
    return _shown(row)


async def update_conversation(request: web.Request) -> web.Response:
    conversation_id = _id(request)
    metadata = decode_update(await read_body(request))
    row = await request.app[STORE].write(conversations.update_metadata, conversation_id, project_of(request), orjson.dumps(metadata))
    if row is None:
        raise conversation_not_found(conversation_id)
    return _shown(row)


async def delete_conversation(request: web.Request) -> web.Response:
    conversation_id = _id(request)
    if not await request.app[STORE].write(conversations.remove, conversation_id, project_of(request)):
        raise conversation_not_found(conversation_id)
    return json_response(encode(ConversationDeleted(conversation_id)))


async def add_items(request: web.Request) -> web.Response:
    store = request.app[STORE]
    conversation_id = _id(request)
    include = parse_include(request.query)
    project = project_of(request)
    added = await rows(store, decode_add(await read_body(request)), project)
    if not await store.write(conversations.append, conversation_id, project, added):
        raise conversation_not_found(conversation_id)
    return item_list([(id_, item_view(body, include)) for id_, body in added], False)


async def list_items(request: web.Request) -> web.Response:
    page = page_query(request)
    conversation_id = _id(request)
    found = await request.app[STORE].transact(conversations.page, conversation_id, project_of(request), page.after, page.limit, page.descending)
    if found is None:
        raise conversation_not_found(conversation_id)
    return item_list([(id_, item_view(body, page.include)) for id_, body in found[0]], found[1])


async def get_item(request: web.Request) -> web.Response:
    include = parse_include(request.query)
    conversation_id, item_id = _id(request), _id(request, "item_id")
    store = request.app[STORE]
    body = await store.transact(conversations.item, conversation_id, project_of(request), item_id)
    if body is None:
        raise await _missing(store, conversation_id, project_of(request), item_id)
    return json_response(item_view(body, include))


async def delete_item(request: web.Request) -> web.Response:
    conversation_id, item_id = _id(request), _id(request, "item_id")
    store = request.app[STORE]
    if not await store.write(conversations.remove_item, conversation_id, project_of(request), item_id):
        raise await _missing(store, conversation_id, project_of(request), item_id)
    return await get_conversation(request)


async def _missing(store: Store, conversation_id: str, project: str, item_id: str) -> ApiError:
    """Which is missing: the conversation, or the item in it."""
    if await store.transact(conversations.get, conversation_id, project) is None:
        return conversation_not_found(conversation_id)
    return not_found(f"Item with id '{item_id}' not found in conversation '{conversation_id}'.")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/conversations", create_conversation)
    app.router.add_get("/v1/conversations/{conversation_id}", get_conversation)
    app.router.add_post("/v1/conversations/{conversation_id}", update_conversation)
    app.router.add_delete("/v1/conversations/{conversation_id}", delete_conversation)
    app.router.add_post("/v1/conversations/{conversation_id}/items", add_items)
    app.router.add_get("/v1/conversations/{conversation_id}/items", list_items)
    app.router.add_get("/v1/conversations/{conversation_id}/items/{item_id}", get_item)
    app.router.add_delete("/v1/conversations/{conversation_id}/items/{item_id}", delete_item)
