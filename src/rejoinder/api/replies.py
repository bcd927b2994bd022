"""What every handler answers with: JSON bodies and server-sent event streams."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from rejoinder.protocol.errors import ApiError, not_found

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def response_not_found(response_id: str) -> ApiError:
    return not_found(f"Response with id '{response_id[:64]!s}' not found.")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=raw, status=status, content_type="application/json", headers=headers)
