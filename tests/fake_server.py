"""The common part of every fake upstream: a real aiohttp server on 127.0.0.1 in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
import threading
from typing import Any

from aiohttp import web


class FakeServer:
    """Subclasses add their routes; `requests` and `headers` record what arrived, in order."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # serve https with this context
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.disconnects = 0  # streams whose client (the gateway) hung up
        self.active = 0  # streams being written right now
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def counted(self):
        """Around writing a stream: counts it in `active` meanwhile, and in `disconnects` when
        the gateway hangs up on it."""
        self.active += 1
        try:
            yield
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        finally:
            self.active -= 1

    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    async def record(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path_qs)
        return body

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()


class ImplicitCache:
    """An upstream that caches prompt prefixes by itself, as OpenAI and Gemini do: a request's
    leading units (its tools and instructions, then each message) that an earlier request
    began with are read from the cache, when they hold at least `minimum` tokens, counted in
    whole `step`s past it (OpenAI: 1,024 tokens, then 128 at a time). Tokens are the fakes' own
    count, a unit's JSON length over four. Used by the fakes' `agent` scenario, whose usage is
    the request's own (the others report canned figures)."""

    def __init__(self, minimum: int = 1024, step: int = 128) -> None:
        self.minimum, self.step = minimum, step
        self.seen: set[str] = set()

    def account(self, units: list[Any]) -> tuple[int, int]:
        """The request's input tokens, and how many of them were cached."""
        sizes = [len(json.dumps(unit, sort_keys=True)) // 4 for unit in units]
        hit, digest = 0, hashlib.sha256()
        for i, unit in enumerate(units):
            digest.update(json.dumps(unit, sort_keys=True).encode())
            key = digest.hexdigest()
            if key in self.seen:
                hit = i + 1
            self.seen.add(key)
        cached = sum(sizes[:hit])
        cached = 0 if cached < self.minimum else self.minimum + (cached - self.minimum) // self.step * self.step
        return sum(sizes), cached


def fake_count(body: dict) -> int:
    """The token count every fake's counting endpoint answers: a fixed function of what it was
    sent, so a test can tell the gateway relayed the upstream's own count of its own request."""
    return len(json.dumps(body, sort_keys=True)) // 4 + 7


async def sse(request: web.Request, frames: list[bytes], content_type: str = "text/event-stream") -> web.StreamResponse:
    """Send `frames` as one streamed response, each frame its own write."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for frame in frames:
        await response.write(frame)
    return response
