"""The Vector Stores API: `/v1/vector_stores`, its files and file batches, and its search.
What a store holds is ingested by `engine.retrieval` (on whichever instance claims a file);
searching is `engine.retrieval.search`, which the `file_search` tool shares."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from aiohttp import web

from rejoinder.api.replies import STORE, descending, json_response, limit_after, object_list, project_of, read_body
from rejoinder.engine.retrieval import Ingester, Retrieval, store_not_found
from rejoinder.protocol.errors import ApiError, invalid, not_found
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.protocol.response import encode
from rejoinder.protocol.vector_stores import (
    FileBatch,
    FileCounts,
    SearchPage,
    StoreDeleted,
    StoreExpiry,
    StoreFileDeleted,
    VectorStore,
    VectorStoreFile,
    decode_add,
    decode_batch,
    decode_create,
    decode_search,
    decode_update,
    decode_update_file,
)
from rejoinder.store import vector_stores as stored
from rejoinder.store.vector_stores import FileRow, StoreRow, UnknownFile

INGESTER = web.AppKey("ingester", Ingester)
RETRIEVAL = web.AppKey("retrieval", Retrieval)
_DAY = 86_400


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not is_valid_id(value):
        raise store_not_found(value) if name == "store_id" else not_found(f"No such object: {value[:64]}")
    return value


def _counts(counts: dict[str, int]) -> FileCounts:
    return FileCounts(**counts, total=sum(counts.values()))


def _expires_at(last_active_at: int, days: int | None) -> int | None:
    """When a store expires: `days` after its last activity (None: it never does)."""
    return last_active_at + days * _DAY if days is not None else None


def _expired(last_active_at: int, days: int | None) -> bool:
    ends = _expires_at(last_active_at, days)
    return ends is not None and int(time.time()) > ends


def _store_view(row: StoreRow) -> VectorStore:
    expired = _expired(row.last_active_at, row.expires_after)
    status = "expired" if expired else "in_progress" if row.counts["in_progress"] else "completed"
    view = VectorStore(row.id, row.created_at, row.name or "", row.usage_bytes, _counts(row.counts), status, row.last_active_at, orjson.loads(row.metadata))
    if row.expires_after is not None:
        view.expires_after = {"anchor": "last_active_at", "days": row.expires_after}
        view.expires_at = _expires_at(row.last_active_at, row.expires_after)
    return view


def _file_view(row: FileRow) -> VectorStoreFile:
    chunking = orjson.loads(row.chunking)
    last_error = orjson.loads(row.last_error) if row.last_error is not None else None
    return VectorStoreFile(
        row.file_id, row.created_at, row.store_id, row.status, row.usage_bytes, last_error, {"type": "static", "static": chunking}, orjson.loads(row.attributes)
    )


async def _store(request: web.Request, store_id: str) -> StoreRow:
    row = await request.app[STORE].transact(stored.get, project_of(request), store_id)
    if row is None:
        raise store_not_found(store_id)
    return row


async def _add(request: web.Request, store_id: str, wanted: list[Any], batch_id: str | None) -> None:
    try:
        await request.app[STORE].write(stored.add_files, project_of(request), store_id, wanted, batch_id, int(time.time()))
    except UnknownFile as exc:
        raise not_found(f"No such File object: {str(exc.args[0])[:64]}", "file_id") from None
    request.app[INGESTER].wake.set()


async def create_store(request: web.Request) -> web.Response:
    body, wanted = decode_create(await read_body(request))
    store_id, project = new_id("vs"), project_of(request)
    expiry = body.expires_after.days if body.expires_after is not None else None
    await request.app[STORE].write(stored.create, project, store_id, body.name, expiry, body.metadata or {}, int(time.time()))
    if wanted:
        await _add(request, store_id, wanted, None)
    return json_response(encode(_store_view(await _store(request, store_id))))


async def list_stores(request: web.Request) -> web.Response:
    limit, after = limit_after(request)
    rows, more = await request.app[STORE].transact(stored.page, project_of(request), after, limit, descending(request))
    return object_list([msgspec.to_builtins(_store_view(row)) for row in rows], more, no_id="")


async def get_store(request: web.Request) -> web.Response:
    return json_response(encode(_store_view(await _store(request, _id(request, "store_id")))))


async def update_store(request: web.Request) -> web.Response:
    store_id = _id(request, "store_id")
    body = decode_update(await read_body(request))
    values: dict[str, Any] = {}
    if body.name is not msgspec.UNSET:
        values["name"] = body.name
    if body.metadata is not msgspec.UNSET:
        values["metadata"] = body.metadata or {}
    if body.expires_after is not msgspec.UNSET:
        values["expires_after"] = body.expires_after.days if isinstance(body.expires_after, StoreExpiry) else None
    if not await request.app[STORE].write(stored.change, project_of(request), store_id, values):
        raise store_not_found(store_id)
    return json_response(encode(_store_view(await _store(request, store_id))))


async def delete_store(request: web.Request) -> web.Response:
    store_id = _id(request, "store_id")
    if not await request.app[STORE].write(stored.remove, project_of(request), store_id):
        raise store_not_found(store_id)
    return json_response(encode(StoreDeleted(store_id)))


async def search_store(request: web.Request) -> web.Response:
    store_id = _id(request, "store_id")
    body = decode_search(await read_body(request))
    found = await request.app[STORE].transact(stored.expiry, project_of(request), store_id)
    if found is None:
        raise store_not_found(store_id)
    if _expired(*found):
        raise ApiError(400, f"Vector store '{store_id}' has expired.", param=None, code="vector_store_expired")
    queries = [body.query] if isinstance(body.query, str) else body.query
    ranking = body.ranking_options
    threshold = ranking.score_threshold if ranking else 0.0
    found = await request.app[RETRIEVAL].search(project_of(request), [store_id], queries, body.max_num_results, body.filters, threshold)
    return json_response(encode(SearchPage(queries, found)))


async def add_file(request: web.Request) -> web.Response:
    store_id = _id(request, "store_id")
    wanted = decode_add(await read_body(request))
    await request.app[RETRIEVAL].require(project_of(request), [store_id])
    await _add(request, store_id, [wanted], None)
    return await _file_answer(request, store_id, wanted.file_id)


async def _file_answer(request: web.Request, store_id: str, file_id: str) -> web.Response:
    row = await request.app[STORE].transact(stored.get_file, project_of(request), store_id, file_id)
    if row is None:
        raise not_found(f"No file with id '{file_id[:64]}' in vector store '{store_id}'.")
    return json_response(encode(_file_view(row)))


async def list_files(request: web.Request, batch_id: str | None = None) -> web.Response:
    store_id = _id(request, "store_id")
    limit, after = limit_after(request)
    status = request.query.get("filter")
    if status is not None and status not in stored.STATUSES:
        raise invalid("filter", f"Invalid 'filter': expected one of {', '.join(stored.STATUSES)}.")
    await request.app[RETRIEVAL].require(project_of(request), [store_id])
    rows, more = await request.app[STORE].transact(stored.page_files, project_of(request), store_id, status, batch_id, after, limit, descending(request))
    return object_list([msgspec.to_builtins(_file_view(row)) for row in rows], more, no_id="")


async def get_file(request: web.Request) -> web.Response:
    return await _file_answer(request, _id(request, "store_id"), _id(request, "file_id"))


async def update_file(request: web.Request) -> web.Response:
    store_id, file_id = _id(request, "store_id"), _id(request, "file_id")
    attributes = decode_update_file(await read_body(request))
    if not await request.app[STORE].write(stored.set_attributes, project_of(request), store_id, file_id, attributes):
        raise not_found(f"No file with id '{file_id[:64]}' in vector store '{store_id}'.")
    return await _file_answer(request, store_id, file_id)


async def delete_file(request: web.Request) -> web.Response:
    store_id, file_id = _id(request, "store_id"), _id(request, "file_id")
    if not await request.app[STORE].write(stored.remove_file, project_of(request), store_id, file_id):
        raise not_found(f"No file with id '{file_id[:64]}' in vector store '{store_id}'.")
    return json_response(encode(StoreFileDeleted(file_id)))


async def create_batch(request: web.Request) -> web.Response:
    store_id = _id(request, "store_id")
    wanted = decode_batch(await read_body(request))
    await request.app[RETRIEVAL].require(project_of(request), [store_id])
    batch_id = new_id("vsfb")
    await _add(request, store_id, wanted, batch_id)
    return await _batch_answer(request, store_id, batch_id)


async def _batch_answer(request: web.Request, store_id: str, batch_id: str) -> web.Response:
    found = await request.app[STORE].transact(stored.batch_counts, project_of(request), store_id, batch_id)
    if found is None:
        raise not_found(f"No file batch with id '{batch_id[:64]}' in vector store '{store_id}'.")
    created_at, counts = found
    status = "in_progress" if counts["in_progress"] else "cancelled" if counts["cancelled"] else "completed"
    return json_response(encode(FileBatch(batch_id, created_at, store_id, status, _counts(counts))))


async def get_batch(request: web.Request) -> web.Response:
    return await _batch_answer(request, _id(request, "store_id"), _id(request, "batch_id"))


async def cancel_batch(request: web.Request) -> web.Response:
    store_id, batch_id = _id(request, "store_id"), _id(request, "batch_id")
    await request.app[STORE].write(stored.cancel_batch, project_of(request), store_id, batch_id)
    return await _batch_answer(request, store_id, batch_id)


async def batch_files(request: web.Request) -> web.Response:
    store_id, batch_id = _id(request, "store_id"), _id(request, "batch_id")
    await _batch_answer(request, store_id, batch_id)  # a 404 for an unknown batch
    return await list_files(request, batch_id)


def add_routes(app: web.Application, ingester: Ingester, retrieval: Retrieval) -> None:
    app[INGESTER] = ingester
    app[RETRIEVAL] = retrieval
    base = "/v1/vector_stores"
    app.router.add_post(base, create_store)
    app.router.add_get(base, list_stores)
    app.router.add_get(base + "/{store_id}", get_store)
    app.router.add_post(base + "/{store_id}", update_store)
    app.router.add_delete(base + "/{store_id}", delete_store)
    app.router.add_post(base + "/{store_id}/search", search_store)
    app.router.add_post(base + "/{store_id}/files", add_file)
    app.router.add_get(base + "/{store_id}/files", list_files)
    app.router.add_get(base + "/{store_id}/files/{file_id}", get_file)
    app.router.add_post(base + "/{store_id}/files/{file_id}", update_file)
    app.router.add_delete(base + "/{store_id}/files/{file_id}", delete_file)
    app.router.add_post(base + "/{store_id}/file_batches", create_batch)
    app.router.add_get(base + "/{store_id}/file_batches/{batch_id}", get_batch)
    app.router.add_post(base + "/{store_id}/file_batches/{batch_id}/cancel", cancel_batch)
    app.router.add_get(base + "/{store_id}/file_batches/{batch_id}/files", batch_files)
