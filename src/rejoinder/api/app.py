"""The aiohttp application: its wiring (what is built from the config, what starts and stops
with it) and the guard every route passes. The handlers live in their own modules
(`api.responses`, `api.conversations`, …); no business logic lives in `api/`.

One middleware guards every route: who is asking on `/v1/` and `/metrics` (the master key, a
project's API key, or anyone on a gateway without a master key; see `engine.access.principals`), the
master key alone on the organization API and `/metrics`, and OpenAI's error envelope for every
failure, including aiohttp's own (unknown route, wrong method, body too large), so no client
ever sees a bare 500 or a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from rejoinder.api import console, conversations, files, observe, organization, prompts, responses, sockets, usage, vector_stores
from rejoinder.api.replies import CLIENT_TIMEOUT, STORE, json_response
from rejoinder.config import Config, sealing_secrets
from rejoinder.engine import lifecycle
from rejoinder.engine.access import Access, Limiter
from rejoinder.engine.background import Deliverer, Runner, open_feed, outbox
from rejoinder.engine.context import Prompts
from rejoinder.engine.engine import Engine
from rejoinder.engine.responses import Responses
from rejoinder.engine.retrieval import Ingester, Retrieval
from rejoinder.engine.router import Router
from rejoinder.engine.tools import SearXNG
from rejoinder.engine.tools.mcp import McpAccess, stdio_servers
from rejoinder.protocol.errors import ApiError
from rejoinder.providers import state
from rejoinder.providers.embeddings import embedder
from rejoinder.providers.http import close_session
from rejoinder.providers.state import Keyring
from rejoinder.store.repository import Store
from rejoinder.store.runs import queue_depth

log = logging.getLogger("rejoinder.api")


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.body(), error.status, error.headers)
    response["error_code"] = error.code  # for the metrics (see api.observe)
    return response


def _guard(access: Access, max_body: int):
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            path = request.path
            if path.startswith("/v1/") or path == "/metrics":
                request["principal"] = principal = await access.principal(request.headers.get("Authorization"), request.headers.get("OpenAI-Project"))
                if path.startswith("/v1/organization/") or path == "/metrics":
                    organization.require_admin(principal)
            length = request.content_length
            if length is not None and length > max_body:  # refused before a byte of it is read
                raise _too_large(max_body)
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)
        except web.HTTPException as exc:
            return error_response(_http_error(request, exc, max_body))
        except ConnectionError:
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(ApiError(500, "The gateway hit an internal error.", type="server_error", code="server_error"))

    return guard


def _http_error(request: web.Request, exc: web.HTTPException, max_body: int) -> ApiError:
    if exc.status == 404:
        return ApiError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
    if exc.status == 405:
        return ApiError(405, f"Method {request.method} is not allowed for {request.path}.", code="method_not_allowed")
    if exc.status == 413:
        return _too_large(max_body)
    return ApiError(exc.status, exc.reason or "HTTP error", code=None)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than this gateway accepts ({limit} bytes).", code="request_too_large")


async def health(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
    except Exception as exc:
        return error_response(ApiError(503, f"The database is not reachable ({type(exc).__name__}).", type="server_error", code="database_unavailable"))
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    queued = await request.app[STORE].transact(queue_depth)
    return web.Response(body=request.app[observe.OBSERVED].exposition(queued), content_type="text/plain", charset="utf-8")


def create_app(config: Config) -> web.Application:
    router = Router(config.models)
    store = Store(config.database_url, endings=lifecycle.store_endings(outbox(config.webhooks)))
    access = Access(store, config.master_key)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[observe.observe, _guard(access, config.max_body_bytes)])
    app[CLIENT_TIMEOUT] = config.client_timeout
    app[organization.ACCESS] = access
    app.on_response_prepare.append(observe.add_request_id)
    tally = usage.Tally(store)
    app[responses.LIMITER] = limiter = Limiter(config.redis_url)
    app[observe.OBSERVED] = observed = observe.Metrics(tally, limiter)
    store.start_maintenance(config.instance_ttl)
    state.use(Keyring(sealing_secrets(config) or [store.generated_secret("encrypted_content")]))
    app[responses.ROUTER] = router
    app[STORE] = store
    search = SearXNG(config.web_search.url, config.web_search.max_results, config.web_search.timeout) if config.web_search else None
    limits = config.mcp_limits
    mcp_access = McpAccess(config.mcp_allow_hosts, config.mcp_servers, stdio_servers(config.mcp_servers, limits), limits)
    retrieval = Retrieval(store, embedder(config.embeddings))
    app[responses.ENGINE] = engine = Engine(router, store, retrieval, config.create_missing_conversations, search, mcp_access)
    app[prompts.PROMPTS] = templates = Prompts(store, config.prompts_dir)
    feed = open_feed(config.redis_url)
    deliverer = Deliverer(store, config.webhooks)
    app[responses.RUNNER] = runner = Runner(engine, store, feed, deliverer, config.background.max_concurrent, config.background.poll, observed.ended)
    app[responses.RESPONSES] = stored = Responses(store, runner, feed)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/organization/usage", usage.report)

    async def open_socket(request: web.Request) -> web.StreamResponse:
        return await sockets.open_socket(request, engine, templates, observed, limiter, config, stored.sessions)

    responses.add_routes(app, open_socket)
    conversations.add_routes(app)
    files.add_routes(app, config.max_file_bytes)
    ingester = Ingester(store, retrieval.embedder)
    vector_stores.add_routes(app, ingester, retrieval)
    prompts.add_routes(app)
    organization.add_routes(app)
    console.add_routes(app)

    async def start(_: web.Application) -> None:
        runner.start()
        ingester.start()
        tally.start()
        access.start()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, templates.reload)

    async def shutdown(_: web.Application) -> None:
        await runner.shutdown(config.shutdown_grace)
        await ingester.stop()
        await tally.stop()
        await access.stop()

    async def close(_: web.Application) -> None:
        await close_session()
        await feed.close()
        await limiter.close()
        await mcp_access.close()
        await templates.cage.close()
        store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(close)
    return app
