"""WebSocket mode's transport: `GET /v1/responses` with an upgrade, one persistent socket per
agent session (what `client.responses.connect()` opens). What the frames mean is
`engine.sockets.session`'s; this module owns the socket: authentication (the bearer header, checked by
the app's guard before the upgrade), the frame size limit, ping/pong, the connection's time
limit, and a send path that waits for a slow reader instead of queueing without bound.

Per-message compression is declined: its zlib state would cost every idle socket far more
memory than the socket itself.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from aiohttp import WSCloseCode, WSMsgType, web

from rejoinder.api.observe import Metrics
from rejoinder.api.replies import principal_of
from rejoinder.config import Config
from rejoinder.engine.access import Limiter
from rejoinder.engine.context import Prompts
from rejoinder.engine.engine import Engine
from rejoinder.engine.sockets import Session
from rejoinder.protocol.errors import ApiError

log = logging.getLogger("rejoinder.sockets")

# aiohttp's writer waits for the peer once this much is buffered; with one frame in flight per
# lane, a connection holds at most this plus a frame per lane, however slowly its client reads.
_SEND_BUFFER = 64 * 1024


async def open_socket(
    request: web.Request, engine: Engine, prompts: Prompts, metrics: Metrics, limiter: Limiter, config: Config, sessions: weakref.WeakSet[Session]
) -> web.StreamResponse:
    """`sessions` holds the instance's open sessions, so a response deleted over HTTP is
    forgotten by them too."""
    settings = config.websocket
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        max_msg_size=settings.max_frame_bytes or config.max_body_bytes,
        compress=False,
        decode_text=False,
        writer_limit=_SEND_BUFFER,
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(426, "GET /v1/responses opens a WebSocket (WebSocket mode): send an upgrade request, or POST /v1/responses.", code="upgrade_required")
    await ws.prepare(request)

    async def send(data: bytes) -> None:
        await ws.send_frame(data, WSMsgType.TEXT)

    session = Session(engine, prompts, metrics, limiter, principal_of(request), settings, send)
    sessions.add(session)
    try:
        async with asyncio.timeout(settings.max_duration):
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await session.receive(message.data)
                elif message.type == WSMsgType.ERROR:  # a frame over the limit, a protocol error: aiohttp closes
                    log.info("WebSocket closed: %s", message.data)
                    break
    except TimeoutError:
        minutes = settings.max_duration / 60
        limit = ApiError(
            400, f"This WebSocket connection has reached its time limit ({minutes:g} minutes): open a new one.", code="websocket_connection_limit_reached"
        )
        try:
            await session.error(limit, None)
        except ConnectionError:
            pass
    except ConnectionError:
        pass
    except Exception:  # the upgrade is done: no HTTP error can follow, so the socket closes
        log.exception("WebSocket connection failed inside the gateway")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    finally:
        await session.close()
        await ws.close()
    return ws
