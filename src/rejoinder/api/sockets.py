"""WebSocket mode's transport: `GET /v1/responses` with an upgrade, one persistent socket per
agent session (what `client.responses.connect()` opens). What the frames mean is
`engine.sockets.session`'s; this module owns the socket: authentication (the bearer header, checked by
the app's guard before the upgrade), the frame size limit, ping/pong, the connection's time
limit, a send path that waits for a slow reader instead of queueing without bound, and the
rule that a client's frames are masked.

Per-message compression is declined: its zlib state would cost every idle socket far more
memory than the socket itself.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

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
    protocol = request.protocol
    protocol._payload_parser = _MaskedOnly(protocol._payload_parser, request.transport)  # noqa: SLF001 - aiohttp's frame reader, wrapped

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


class _MaskedOnly:
    """aiohttp's frame reader, behind a check it does not make: RFC 6455 (5.1) has a server
    close the connection when a client's frame is not masked. Only frame headers are looked at
    (a payload is skipped by its length), so the check costs next to nothing per frame."""

    def __init__(self, reader: Any, transport: asyncio.BaseTransport | None) -> None:
        self.reader = reader
        self.transport = transport
        self.head = b""  # a frame header that arrived in parts
        self.skip = 0  # payload bytes still to pass
        self.refused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self.refused and self._all_masked(data):
            return self.reader.feed_data(data)
        if not self.refused:
            self.refused = True
            log.info("WebSocket closed: a client frame was not masked")
            if self.transport is not None:
                self.transport.close()
        return True, b""  # nothing more is read

    def feed_eof(self) -> None:
        self.reader.feed_eof()

    def _all_masked(self, data: bytes) -> bool:
        at, end = 0, len(data)
        while at < end:
            if self.skip:
                step = min(self.skip, end - at)
                self.skip -= step
                at += step
                continue
            had = len(self.head)
            head = self.head + data[at : at + 14 - had]
            if len(head) >= 2 and not head[1] & 0x80:
                return False
            flag = head[1] & 0x7F if len(head) >= 2 else 0
            extended = 2 if flag == 126 else 8 if flag == 127 else 0
            size = 2 + extended + 4
            if len(head) < size:  # the rest of the header comes in a later read
                self.head = head
                return True
            self.skip = int.from_bytes(head[2 : 2 + extended], "big") if extended else flag
            self.head = b""
            at += size - had
        return True
