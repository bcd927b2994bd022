"""The HTTP server under the app: how it runs, and what it answers before a request reaches
any route.

aiohttp answers a request it cannot parse (a malformed header, a bad chunk, an unsupported
`Content-Encoding`) itself, in plain text that quotes the offending line back, a key
included. `_Connection` answers those in OpenAI's envelope instead, with a message that names
the kind of fault and quotes nothing, and logs no more than that. Connections whose headers
stop arriving are closed after `client_timeout` (aiohttp's idle timeout also covers a request
whose headers are incomplete); a body that stops arriving is `api.replies.read_body`'s.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from rejoinder.protocol.errors import ApiError

log = logging.getLogger("rejoinder.api")


def _error_of(status: int, exc: BaseException | None) -> ApiError:
    if isinstance(exc, ContentEncodingError):
        return ApiError(status, "The request body's Content-Encoding is not one this gateway reads (gzip, deflate, br, zstd).", code="invalid_body")
    if isinstance(exc, LineTooLong):
        return ApiError(status, "A line of the request (its request line or a header) is too long.", code="invalid_request")
    if isinstance(exc, HttpProcessingError):
        return ApiError(status, "The request is not valid HTTP (a malformed request line, header or body framing).", code="invalid_request")
    if status == 504:
        return ApiError(504, "The gateway took too long to answer.", type="server_error", code="timeout")
    return ApiError(status, "The gateway hit an internal error.", type="server_error", code="server_error")


class _Connection(RequestHandler):
    """aiohttp's connection handler, its own error answers in OpenAI's envelope."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        kind = type(exc).__name__ if exc else "no exception"
        if status >= 500:
            log.error("the HTTP server failed a request: %s (HTTP %d)", kind, status)
        else:  # the client's fault: what it sent may hold a secret, so only its kind is logged
            log.info("refused a request that could not be parsed: %s (HTTP %d)", kind, status)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had begun: no error can follow it")
        error = _error_of(status, exc)
        answer = web.Response(body=error.body(), status=error.status, content_type="application/json")
        answer.force_close()
        return answer


class _Runner(web.AppRunner):
    """An `AppRunner` whose connections are `_Connection`s."""

    @property
    def server(self) -> Any:
        made = super().server
        if made is None:
            return None
        return functools.partial(_Connection, made, loop=made._loop, **made._kwargs)  # noqa: SLF001 - what web.Server passes its handlers


GC_YOUNGEST = 20_000  # allocations between two collections of the youngest generation (CPython's default: 700)


def settle_garbage_collector() -> None:
    """Once the app is up: what it made to start (modules, the app, the config: about 100,000
    objects) is frozen out of the collector's reach, so a full collection no longer walks it,
    and the youngest generation is collected every `GC_YOUNGEST` allocations rather than 700.
    A request's objects die young and mostly by reference counting; measured (bench/cost_map.py),
    the collector took 12-17 % of a request's CPU before."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST, 10, 10)


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    client_timeout: float,
    shutdown_timeout: float,
    access_log: logging.Logger | None,
    access_log_class: type[AbstractAccessLogger],
    loop: asyncio.AbstractEventLoop,
    listening: Callable[[], None] | None = None,
) -> None:
    """Serve `app` on `host:port` until SIGTERM or SIGINT, then shut it down gracefully;
    `listening` is called once the port is bound."""
    runner = _Runner(
        app,
        handle_signals=True,
        handler_cancellation=True,
        keepalive_timeout=client_timeout,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        access_log_class=access_log_class,
    )

    async def serve() -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        if listening is not None:
            listening()
        settle_garbage_collector()
        await asyncio.Event().wait()  # until a signal raises GracefulExit

    asyncio.set_event_loop(loop)
    main = loop.create_task(serve())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        main.cancel()
        loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        loop.run_until_complete(runner.cleanup())
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
