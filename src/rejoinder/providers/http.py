"""The upstream side of HTTP, shared by every provider.

One `Upstream` shell through which every HTTP provider calls (its deadlines and size caps) on
the process's upstream client (`providers.client`: kept-alive connections), and one reader for
server-sent events. What an upstream's failures become for the client is `failures.py`'s. The
gateway's other outgoing calls (webhooks, a search backend) use one aiohttp session (`session`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from msgspec import Meta, Struct

from rejoinder.protocol.errors import ApiError
from rejoinder.providers.client import Client, Connection, Target, UpstreamBroken, encode_headers
from rejoinder.providers.failures import cut_short, error_from_status, read_json, too_large, unreachable

log = logging.getLogger("rejoinder.upstream")

_session: aiohttp.ClientSession | None = None
_client: tuple[Client, _Watch] | None = None


def session() -> aiohttp.ClientSession:
    """The process's client for the gateway's own calls (webhooks, a search backend), created
    on first use inside the running loop."""
    global _session
    if _session is None or _session.closed:
        # No cookie jar: what one receiver sets must never ride along on another's call.
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60), cookie_jar=aiohttp.DummyCookieJar())
    return _session


def upstream_client() -> tuple[Client, _Watch]:
    """The process's client for model upstreams (see `providers.client`) and the watch over
    its calls' deadlines, made inside the running loop at the first call."""
    global _client
    if _client is None:
        loop = asyncio.get_running_loop()
        _client = Client(loop), _Watch(loop)
    return _client


async def close_session() -> None:
    global _session, _client
    if _session is not None:
        await _session.close()
        _session = None
    if _client is not None:
        _client[0].close()
        _client = None


_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")


def versioned(base_url: str, version: str) -> str:
    """`base_url` as the provider's own SDK takes it (a bare host) or as its API paths start
    (with a version segment): the version is added when no path segment is one."""
    base = base_url.rstrip("/")
    if any(_VERSION_SEGMENT.match(segment) for segment in urlsplit(base).path.split("/")):
        return base
    return f"{base}/{version}"


_Seconds = Annotated[float, Meta(gt=0)]
_Bytes = Annotated[int, Meta(gt=0)]


class UpstreamLimits(Struct, frozen=True, kw_only=True):
    """How long and how much one upstream call may take; each deployment sets its own.

    Timeouts count whole events, not bytes, so an upstream that drips a byte a second cannot
    hold a request past them; size caps keep one event or body from filling memory.
    """

    connect_timeout: _Seconds = 10.0  # to open the connection
    first_event_timeout: _Seconds = 600.0  # from the call to the stream's first complete event
    timeout: _Seconds = 600.0  # between two events (for a whole body, its headers and then all of it)
    total_timeout: _Seconds = 3600.0  # the whole call
    max_event_bytes: _Bytes = 16 * 1024 * 1024  # one server-sent event
    max_response_bytes: _Bytes = 64 * 1024 * 1024  # a non-streaming body


class Upstream:
    """The HTTP side of one deployment: its headers (with its key), the key to scrub from
    whatever the upstream says back, and its limits. Every HTTP provider calls through one."""

    def __init__(self, headers: dict[str, str], secret: str | None, limits: UpstreamLimits) -> None:
        self.secret = secret
        self.limits = limits
        self.head = encode_headers(headers)
        self.targets: dict[str, Target] = {}  # URL → where it goes, parsed once

    @asynccontextmanager
    async def call(self, url: str, body: bytes, stream: bool) -> AsyncIterator[Reply]:
        """POST to the upstream and yield its successful reply; any failure becomes `ApiError`,
        logged at warning with the URL called (without credentials or query)."""
        try:
            async with self._call(url, body, stream) as reply:
                yield reply
        except ApiError as exc:
            where = urlsplit(url)
            log.warning(
                "upstream call to %s://%s%s failed: %s %s",
                where.scheme,
                where.hostname,
                (f":{where.port}" if where.port else "") + where.path,
                exc.status,
                exc.code,
            )
            raise

    @asynccontextmanager
    async def _call(self, url: str, body: bytes, stream: bool) -> AsyncIterator[Reply]:
        client, watch = upstream_client()
        loop = client.loop
        started = loop.time()
        limits = self.limits
        target = self._target(url)
        try:
            connection = await client.connection(target, limits.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:  # refused, unresolvable, TLS, or past connect_timeout
            raise unreachable(exc) from None
        connection.send(target, body)
        # One deadline per call, looked at by the process's `_Watch`: a stream's headers and first
        # event within first_event_timeout, a whole body's headers within timeout (then all of it,
        # see `Reply.body`); all within total_timeout.
        first, limit = (limits.first_event_timeout, "first_event_timeout") if stream else (limits.timeout, "timeout")
        deadline = _Deadline(watch, connection, started + first, limit, started + limits.total_timeout)
        try:
            await connection.read_headers()
            if connection.status >= 400:
                raise error_from_status(connection.status, await read_capped(connection, 65536, keep=True), connection.headers, self.secret, url)
            yield Reply(self, connection, loop, deadline)
        except asyncio.TimeoutError:
            raise self._late(deadline.limit if deadline.expired else "timeout") from None
        except UpstreamBroken as exc:  # closed, or not HTTP this client reads
            if not connection.headers_done:
                raise unreachable(exc) from None
            raise ApiError(502, "The upstream model provider closed the connection mid-response.", type="server_error", code="upstream_error") from None
        finally:
            deadline.cancel()
            client.release(connection)

    def _target(self, url: str) -> Target:
        target = self.targets.get(url)
        if target is None:
            if len(self.targets) >= 1024:  # URLs name models: a handful per deployment
                self.targets.clear()
            target = self.targets[url] = Target(url, self.head)
        return target

    async def count(self, url: str, body: dict[str, Any], field: str) -> int:
        """POST `body` to a token-counting endpoint and read the count in `field`."""
        async with self.call(url, orjson.dumps(body), stream=False) as reply:
            answer = read_json(await reply.body())
        count = answer.get(field) if isinstance(answer, dict) else None
        if type(count) is not int or not 0 <= count < 2**53:
            raise ApiError(502, "The upstream model provider's token count could not be read.", type="server_error", code="upstream_error")
        return count

    def _late(self, limit: str) -> ApiError:
        seconds = getattr(self.limits, limit)
        return ApiError(504, f"The upstream model provider timed out ({limit}: {seconds:g} s).", type="server_error", code="upstream_timeout")


class Reply:
    """A successful upstream response, read within its deployment's limits."""

    def __init__(self, upstream: Upstream, connection: Connection, loop: asyncio.AbstractEventLoop, deadline: _Deadline) -> None:
        self.upstream = upstream
        self.connection = connection
        self.loop = loop
        self.deadline = deadline  # the call's (see `Upstream._call`)

    async def body(self) -> bytes:
        """A whole (non-streaming) body, no larger than `max_response_bytes`, read within
        `timeout` of its headers: a body is one event, so an upstream that drips it a byte at a
        time cannot hold the request. A body that came with its headers (most do) needs no timer."""
        limits = self.upstream.limits
        if not self.connection.is_eof():
            self.deadline.expect(self.loop.time() + limits.timeout, "timeout")
        return await read_capped(self.connection, limits.max_response_bytes)

    async def deltas(self, translate: Callable[[bytes], list[Any]], translator: StreamTranslator) -> AsyncIterator[list[Any]]:
        """Per network read, the deltas `translate` makes of each event's data; the stream's
        closing deltas travel with the read that ended it, so a fast upstream costs one write.

        When `translate` raises (the upstream reported an error), what arrived before the error
        is yielded first, so the client still sees it before `response.failed`.
        """
        async for events in self._events():
            deltas: list[Any] = []
            try:
                for data in events:
                    deltas += translate(data)
            except ApiError:
                if deltas:
                    yield deltas
                raise
            if translator.done:
                yield deltas + translator.finish()
                return
            if deltas:
                yield deltas
        yield translator.finish()

    async def _events(self) -> AsyncIterator[list[bytes]]:
        """Yield, per network read, the data of the complete server-sent events it finished.

        Batching by read lets the engine answer everything that arrived together with one
        write. Comments and keep-alives are skipped; a trailing event without its blank line
        still counts. The first event must come within `first_event_timeout`, each next one
        within `timeout`, and none may be larger than `max_event_bytes`.
        """
        limits = self.upstream.limits
        content = self.connection
        loop = self.loop
        deadline = self.deadline  # first_event_timeout from the call, until the first event
        pending = carry = b""
        try:
            while chunk := await content.readany():
                pending, carry, events = _split(pending, carry, chunk, limits.max_event_bytes)
                if events:
                    deadline.paused = True  # the engine's time with the events is not the upstream's
                    yield events
                    deadline.expect(loop.time() + limits.timeout, "timeout")
        except asyncio.TimeoutError:  # the deadline's
            raise self.upstream._late(deadline.limit if deadline.expired else "timeout") from None
        finally:
            deadline.cancel()
        if (pending + carry).strip():
            data = _parse_event(pending)
            if data is not None:
                yield [data]


class _Deadline:
    """When a call's next event is due (its headers, a stream's next event, a whole body). The
    process's `_Watch` looks at it ten times a second; past its due time (and not paused while
    the engine holds the events), the pending read fails."""

    __slots__ = ("watch", "content", "end", "expired", "paused", "due", "limit")

    def __init__(self, watch: _Watch, content: Connection, due: float, limit: str, end: float) -> None:
        self.watch = watch
        self.content = content
        self.end = end  # the whole call's deadline
        self.expired = False
        self.paused = False
        self.due, self.limit = min(due, end), limit if due < end else "total_timeout"
        watch.add(self)

    def expect(self, due: float, limit: str) -> None:
        self.paused = False
        self.due, self.limit = (due, limit) if due < self.end else (self.end, "total_timeout")

    def expire(self) -> None:
        self.expired = True
        self.watch.remove(self)
        self.content.set_exception(asyncio.TimeoutError())

    def cancel(self) -> None:
        self.watch.remove(self)


class _Watch:
    """Every open call's deadline, looked at by one timer every `TICK` seconds while there are
    any: a timer handle per call (made, moved, cancelled) cost about 10 µs of a request's CPU,
    and a deadline does not need to be kept to the millisecond."""

    TICK = 0.1

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.deadlines: dict[_Deadline, None] = {}
        self.handle: asyncio.TimerHandle | None = None

    def add(self, deadline: _Deadline) -> None:
        self.deadlines[deadline] = None
        if self.handle is None:
            self.handle = self.loop.call_later(self.TICK, self._tick)

    def remove(self, deadline: _Deadline) -> None:
        self.deadlines.pop(deadline, None)

    def _tick(self) -> None:
        now = self.loop.time()
        for deadline in [d for d in self.deadlines if not d.paused and d.due <= now]:
            deadline.expire()
        self.handle = self.loop.call_later(self.TICK, self._tick) if self.deadlines else None


def _split(pending: bytes, carry: bytes, chunk: bytes, cap: int) -> tuple[bytes, bytes, list[bytes]]:
    """Add one read to what is pending: `(pending, carry, data of the events it completed)`.
    Line ends become "\n" (a "\r" at a read's end waits as `carry` for a "\n" that may follow);
    no event may grow past `cap` bytes."""
    if carry or b"\r" in chunk:
        chunk, carry = carry + chunk, b""
        if chunk.endswith(b"\r"):
            chunk, carry = chunk[:-1], b"\r"
        chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\n\n" not in chunk and not (pending.endswith(b"\n") and chunk.startswith(b"\n")):
        pending += chunk  # no event ends in this read
        if len(pending) > cap:
            raise too_large("event", cap)
        return pending, carry, []
    blocks = (pending + chunk).split(b"\n\n")
    pending = blocks.pop()
    if len(pending) > cap or any(len(block) > cap for block in blocks):
        raise too_large("event", cap)
    return pending, carry, [data for data in map(_parse_event, blocks) if data is not None]


class StreamTranslator(Protocol):
    """A provider's reader of one upstream stream."""

    done: bool  # the upstream said its last word (`[DONE]`, `message_stop`, …)

    def finish(self) -> list[Any]:
        """The closing deltas, `Finish` last; raises `ApiError` if the stream ended early."""
        ...


class EndsWithAnEvent:
    """For upstreams whose last event carries the finish (`message_stop`,
    `response.completed`): the translator emits `Finish` itself and sets `done`."""

    done = False

    def finish(self) -> list[Any]:
        if not self.done:
            raise cut_short()
        return []


def _parse_event(block: bytes) -> bytes | None:
    """An event's data (every provider here tells its events apart by the data, not by the
    `event:` line, which may then hold anything without harm)."""
    data = [line[6:] if line[5:6] == b" " else line[5:] for line in block.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(data) if data else None


async def read_capped(connection: Connection, cap: int, keep: bool = False) -> bytes:
    """The whole body, refused (or with `keep`, cut) past `cap` bytes."""
    length = None if connection.is_eof() else connection.content_length
    if length is not None and length > cap and not keep:
        raise too_large("response body", cap)
    chunks, size = [], 0
    while size <= cap and (chunk := await connection.readany()):
        chunks.append(chunk)
        size += len(chunk)
    if size > cap and not keep:
        raise too_large("response body", cap)
    return chunks[0] if len(chunks) == 1 and size <= cap else b"".join(chunks)[:cap]
