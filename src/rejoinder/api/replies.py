"""What every handler shares: the store, reading a body, and answering with JSON bodies, item
lists and server-sent event streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from rejoinder.engine.access import Principal
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import is_valid_id
from rejoinder.protocol.response import ItemList, encode, parse_include
from rejoinder.store.repository import Store

STORE = web.AppKey("store", Store)
CLIENT_TIMEOUT = web.AppKey("client_timeout", float)  # seconds a request's body may take to arrive

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def principal_of(request: web.Request) -> Principal:
    """Who is asking (set by the app's guard on every `/v1/` request)."""
    return request["principal"]


def project_of(request: web.Request) -> str:
    """The project whose stored objects this request may see: to it, any other's do not exist."""
    return request["principal"].project


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else encode(body)
    return web.Response(body=raw, status=status, content_type="application/json", headers=headers)


class Page(NamedTuple):
    """A list request's query: `after`, `limit` (1–100, default 20), `order` and `include[]`."""

    after: str | None
    limit: int
    descending: bool
    include: list[str]


def limit_after(request: web.Request) -> tuple[int, str | None]:
    """A list request's `limit` (1–100, default 20) and `after` (an id)."""
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise invalid("limit", "Invalid 'limit': expected an integer.") from None
    if not 1 <= limit <= 100:
        raise invalid("limit", f"Invalid 'limit': expected a value between 1 and 100, got {limit}.")
    after = request.query.get("after")
    if after is not None and not is_valid_id(after):
        raise invalid("after", "Invalid 'after': expected an id.")
    return limit, after


def descending(request: web.Request) -> bool:
    """A list request's `order`: `desc` (the default) or `asc`."""
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("order", f"Invalid 'order': expected 'asc' or 'desc', got '{order[:16]}'.")
    return order == "desc"


def page_query(request: web.Request) -> Page:
    limit, after = limit_after(request)
    return Page(after, limit, descending(request), parse_include(request.query))


def object_list(data: list[dict[str, Any]], has_more: bool, no_id: str | None = None) -> web.Response:
    """A page of objects (each with an `id`) as a list object; bodies may embed `msgspec.Raw`.
    An empty page's `first_id` and `last_id` are `no_id` (null, or "" where OpenAI's schema
    wants a string)."""
    body = {"object": "list", "data": data, "first_id": data[0]["id"] if data else no_id, "last_id": data[-1]["id"] if data else no_id, "has_more": has_more}
    return json_response(msgspec.json.encode(body))


def item_list(rows: list[Any], has_more: bool) -> web.Response:
    """A page of `(id, body)` rows as a list object, each body embedded as stored."""
    ids = [row[0] for row in rows]
    return json_response(encode(ItemList([msgspec.Raw(row[1]) for row in rows], ids[0] if ids else "", ids[-1] if ids else "", has_more)))


async def read_body(request: web.Request) -> bytes:
    """The request's whole body, which must arrive within `client_timeout` (see `arriving`). A
    body that came whole with its headers (most do) has nothing to wait for, and no timer is set
    (one costs ~5 µs, 1 % of a request)."""
    if request.content.is_eof():
        try:
            return await request.read()
        except (HttpProcessingError, RequestPayloadError):
            raise _undecodable() from None
    async with arriving(request):
        return await request.read()


@contextlib.asynccontextmanager
async def arriving(request: web.Request) -> AsyncIterator[None]:
    """Reading a request's body, which must arrive within `client_timeout`: a client that stops
    sending gets a 408 (and aiohttp closes the connection after its short lingering read), a
    body that cannot be decoded (a corrupt gzip, a bad chunk) a 400."""
    seconds = request.app[CLIENT_TIMEOUT]
    try:
        async with asyncio.timeout(seconds):
            yield
    except (HttpProcessingError, RequestPayloadError):
        raise _undecodable() from None
    except TimeoutError:
        raise ApiError(408, f"The request body did not arrive within {seconds:g} s.", code="request_timeout") from None


def _undecodable() -> ApiError:
    return ApiError(400, "The request body could not be decoded (check its Content-Encoding).", code="invalid_body")
