"""The upstream HTTP client: HTTP/1.1 POSTs over kept-alive connections, responses parsed by
httptools (llhttp, Node.js's parser, in C).

Why not aiohttp's client, which the gateway used before: one upstream call through it cost about
250 µs of CPU on the 2-core development machine (request and response objects, header
multidicts, a task to write the body, timers, traces), a quarter of a whole request's; through
this one, with the `Upstream` shell's deadlines, about 80 (`bench/upstream_client.py`). It does only what the providers need: POST a body
with fixed headers, read the status, the headers and the body (sized, chunked, or up to the
close) as it arrives, and keep the connection for the next call; TLS for https. No redirects,
cookies, proxies or compression (no `Accept-Encoding` is sent, so none comes back).

The deadlines are the caller's (`providers.http._Deadline` fails a pending read through
`set_exception`); reading stops while the reader does not keep up (flow control), so a slow
client of the gateway slows its upstream instead of filling memory.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

IDLE_PER_HOST = 32  # idle keep-alive connections kept to one upstream
IDLE_SECONDS = 60.0  # an idle connection older than this is closed instead of reused
_HIGH_WATER = 256 * 1024  # bytes read and not yet taken before reading pauses


class UpstreamBroken(Exception):
    """The upstream's side of a call failed below HTTP's meaning."""


class UpstreamDisconnected(UpstreamBroken):
    """The upstream closed the connection before its response was complete."""


class UpstreamMalformed(UpstreamBroken):
    """The upstream's response is not HTTP/1.1 this client can read."""


class Target:
    """Where a URL's calls go: its connection pool's key, the request line and head."""

    __slots__ = ("host", "port", "tls", "key", "head")

    def __init__(self, url: str, headers: bytes) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (self.tls, self.host, self.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = parts.netloc.rpartition("@")[2]
        self.head = f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n".encode() + headers


USER_AGENT = "rejoinder"


def encode_headers(headers: dict[str, str]) -> bytes:
    """A request's fixed header lines (a `User-Agent` first); a line break in a name or value
    (a key pasted with its newline) would smuggle a header in, so it is refused."""
    lines = {"User-Agent": USER_AGENT, **headers}
    if any(c in text for item in lines.items() for text in item for c in "\r\n"):
        raise ValueError("an upstream header (or API key) holds a line break")
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in lines.items())


class Connection(asyncio.Protocol):
    """One connection to an upstream, and the response being read on it."""

    def __init__(self, key: tuple[bool, str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False  # the whole response has arrived
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamMalformed("an upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamMalformed(str(exc)[:100]))
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and self._until_close():
            self.complete = True  # a body without a length ends with the connection
        elif not self.complete:
            self._fail(UpstreamDisconnected("closed before the response ended"))
        self._wake()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # (llhttp forgets it once the message is complete)
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.buffer.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # what the caller reads

    def send(self, target: Target, body: bytes) -> None:
        self.transport.write(target.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)  # type: ignore[union-attr]

    async def read_headers(self) -> None:
        while not self.headers_done:
            await self._wait()

    def is_eof(self) -> bool:
        """The whole body has arrived (it may not have been read yet)."""
        return self.complete

    async def readany(self) -> bytes:
        """What has arrived since the last read (waiting for some), or b"" at the body's end."""
        while not self.buffer and not self.complete:
            await self._wait()
        if self.error is not None:
            raise self.error
        data = self.buffer[0] if len(self.buffer) == 1 else b"".join(self.buffer)
        self.buffer.clear()
        self.buffered = 0
        if self.paused and not self.closed:
            self.paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        return data

    def set_exception(self, exc: BaseException) -> None:
        """Fail the pending read (and the ones after): a deadline passed."""
        self._fail(exc)
        self._wake()

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in self.raw_headers))

    @property
    def content_length(self) -> int | None:
        for name, value in self.raw_headers:
            if name.lower() == b"content-length":
                return int(value) if value.strip().isdigit() else None
        return None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.error is None and not self.closed

    def close(self) -> None:
        """Done with for good. The parser (which holds this connection's callbacks) and a failure
        (whose traceback holds the frames that read it) are let go, so no reference cycle is
        left for the garbage collector."""
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.parser = None  # (a closed transport delivers nothing more)
        self.error = None

    def _until_close(self) -> bool:
        names = {name.lower() for name, _ in self.raw_headers}
        return b"content-length" not in names and b"transfer-encoding" not in names and self.status not in (204, 304)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Client:
    """Connections to every upstream, kept alive: at most `IDLE_PER_HOST` idle ones to each
    (after a burst the rest are closed as they come back), none idle past `IDLE_SECONDS`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop  # the one it runs in (asking asyncio for it costs a getpid system call on 3.11)
        self.idle: dict[tuple[bool, str, int], list[Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def connection(self, target: Target, connect_timeout: float) -> Connection:
        """A connection to the target's upstream: an idle one, or a new one. (A kept connection
        the upstream closes just as a request goes out fails that request, as with any client;
        one it closed earlier has been seen closing and is not reused.)"""
        return self._reused(target.key) or await self._connect(target, connect_timeout)

    def release(self, connection: Connection) -> None:
        """The call is done with the connection: kept for the next, or closed."""
        idle = self.idle.setdefault(connection.key, [])
        if connection.reusable() and len(idle) < IDLE_PER_HOST:
            connection._reset()
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for idle in self.idle.values():
            for connection in idle:
                connection.close()
        self.idle.clear()

    def _reused(self, key: tuple[bool, str, int]) -> Connection | None:
        idle = self.idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest still open
            if not connection.closed and not connection.transport.is_closing() and now - connection.idle_since < IDLE_SECONDS:  # type: ignore[union-attr]
                return connection
            connection.close()
        return None

    async def _connect(self, target: Target, timeout: float) -> Connection:
        tls = self._context() if target.tls else None
        async with asyncio.timeout(timeout):
            _, connection = await self.loop.create_connection(
                lambda: Connection(target.key, self.loop), target.host, target.port, ssl=tls, server_hostname=target.host if tls else None
            )
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls
