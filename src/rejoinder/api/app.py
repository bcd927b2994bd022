"""HTTP in, engine calls, bytes out. No business logic lives here.

One middleware guards every route: who is asking on `/v1/` and `/metrics` (the master key, a
project's API key, or anyone on a gateway without a master key; see `engine.access`), the
master key alone on the organization API and `/metrics`, and OpenAI's error envelope for every
failure, including aiohttp's own (unknown route, wrong method, body too large), so no client
ever sees a bare 500 or a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import weakref
from typing import Any

from aiohttp import web

from rejoinder.api import console, conversations, observe, organization, prompts, runs, sockets, usage
from rejoinder.api.replies import SSE_HEADERS, STORE, item_list, json_response, page_query, principal_of, project_of, read_body, response_not_found
from rejoinder.config import Config, sealing_secrets
from rejoinder.engine import webhooks
from rejoinder.engine.access import Access, Principal
from rejoinder.engine.background import Runner
from rejoinder.engine.engine import Engine
from rejoinder.engine.feed import open_feed
from rejoinder.engine.limits import Limiter
from rejoinder.engine.mcp import McpAccess
from rejoinder.engine.mcp_sessions import stdio_servers
from rejoinder.engine.prompts import Prompts
from rejoinder.engine.router import Router
from rejoinder.engine.searching import SearXNG
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import is_valid_id
from rejoinder.protocol.response import Deleted, Model, ModelList, encode_body, parse_include, view
from rejoinder.protocol.sse import frames
from rejoinder.providers import state
from rejoinder.providers.http import close_session
from rejoinder.providers.state import Keyring
from rejoinder.store.repository import Store
from rejoinder.store.runs import queue_depth

log = logging.getLogger("rejoinder.api")

ENGINE = web.AppKey("engine", Engine)
ROUTER = web.AppKey("router", Router)
LIMITER = web.AppKey("limiter", Limiter)


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.body(), error.status, error.headers)
    response["error_code"] = error.code  # for the metrics (see api.observe)
    return response


def _guard(access: Access):
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            path = request.path
            if path.startswith("/v1/") or path == "/metrics":
                request["principal"] = principal = await access.principal(request.headers.get("Authorization"), request.headers.get("OpenAI-Project"))
                if path.startswith("/v1/organization/") or path == "/metrics":
                    organization.require_admin(principal)
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)
        except web.HTTPException as exc:
            return error_response(_http_error(request, exc))
        except ConnectionError:
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(ApiError(500, "The gateway hit an internal error.", type="server_error", code="server_error"))

    return guard


def _http_error(request: web.Request, exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return ApiError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
    if exc.status == 405:
        return ApiError(405, f"Method {request.method} is not allowed for {request.path}.", code="method_not_allowed")
    if exc.status == 413:
        limit = request.app._client_max_size  # noqa: SLF001 - aiohttp keeps the limit here
        return ApiError(413, f"The request body is larger than this gateway accepts ({limit} bytes).", code="request_too_large")
    return ApiError(exc.status, exc.reason or "HTTP error", code=None)


async def health(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
    except Exception as exc:
        return error_response(ApiError(503, f"The database is not reachable ({type(exc).__name__}).", type="server_error", code="database_unavailable"))
    return json_response({"status": "ready"})


async def list_models(request: web.Request) -> web.Response:
    """The models this key may use."""
    principal = principal_of(request)
    models = [Model(name, owner) for name, owner in request.app[ROUTER].names() if principal.allows(name)]
    return json_response(encode_body(ModelList(models)))


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    deployment = request.app[ROUTER].resolve(name)  # 404 for an unknown name
    if not principal_of(request).allows(name):
        raise ApiError(404, f"The model '{name[:128]}' does not exist or you do not have access to it.", param="model", code="model_not_found")
    return json_response(encode_body(Model(deployment.name, deployment.owned_by)))


async def _admitted(request: web.Request) -> Principal:
    """A request that calls a model: counted against its principal's rate limits (a 429 when
    over), its answer to carry the `x-ratelimit-*` headers."""
    principal = principal_of(request)
    request["ratelimit"] = await request.app[LIMITER].admit(principal)
    return principal


async def create_response(request: web.Request) -> web.StreamResponse:
    request["mode"] = "json"  # until known better: how the answer goes, for the metrics
    principal = await _admitted(request)
    decoded, raw = await request.app[prompts.PROMPTS].decode(await read_body(request), principal.project)
    params = decoded.body
    request["mode"] = "background" if params.background else "sse" if params.stream else "json"
    request["deployment"] = request.app[ROUTER].resolve(params.model)
    if params.background:
        return await runs.create_background(request, request.app[STORE], decoded, raw)
    request["run"] = run = await request.app[ENGINE].start(decoded, principal)
    warning = {"x-rejoinder-warning": "; ".join(run.warnings)} if run.warnings else {}
    if not params.stream:
        return json_response(view(await run.finish(None), params.include), headers=warning)
    stream = web.StreamResponse(headers={**SSE_HEADERS, **warning})

    async def sink(events: list[tuple[str, bytes]], last: bool) -> None:
        joined = frames(events)
        await (stream.write_eof(joined) if last else stream.write(joined))

    try:
        await stream.prepare(request)
        await run.finish(sink)
    except ConnectionError:
        log.info("client went away during %s", run.response["id"])
    except Exception:  # the headers are out: a second HTTP response cannot follow; end the body
        log.exception("stream of %s broke after it started", run.response["id"])
        stream.force_close()
    finally:
        await run.release()  # a client gone before the first byte still releases the upstream
    return stream


async def input_tokens(request: web.Request) -> web.Response:
    """The input tokens a create request with this body would use (its conversation, previous
    response, prompt and truncation applied)."""
    principal = principal_of(request)
    decoded, _ = await request.app[prompts.PROMPTS].decode(await read_body(request), principal.project)
    return json_response({"object": "response.input_tokens", "input_tokens": await request.app[ENGINE].input_tokens(decoded, principal)})


async def metrics(request: web.Request) -> web.Response:
    queued = await request.app[STORE].transact(queue_depth)
    return web.Response(body=request.app[observe.OBSERVED].exposition(queued), content_type="text/plain", charset="utf-8")


async def compact_response(request: web.Request) -> web.Response:
    """A context compacted: its user messages and a sealed summary of the rest (`engine.compaction`)."""
    principal = await _admitted(request)
    decoded, _ = await request.app[prompts.PROMPTS].decode(await read_body(request), principal.project)
    return json_response(await request.app[ENGINE].compact(decoded, principal))


def _response_id(request: web.Request) -> str:
    """The path's response id; one that could never have been stored is simply not found."""
    response_id = request.match_info["response_id"]
    if not is_valid_id(response_id):
        raise response_not_found(response_id)
    return response_id


async def get_response(request: web.Request) -> web.StreamResponse:
    include = parse_include(request.query)
    response_id = _response_id(request)
    if request.query.get("stream", "false").lower() == "true":
        return await runs.stream_response(request, request.app[STORE], response_id)
    body = await request.app[STORE].get(response_id, project_of(request))
    if body is None:
        raise response_not_found(response_id)
    return json_response(view(body, include))


async def cancel_response(request: web.Request) -> web.Response:
    return await runs.cancel_response(request, request.app[STORE], _response_id(request))


async def delete_response(request: web.Request) -> web.Response:
    response_id = _response_id(request)
    request.app[runs.RUNNER].stop(response_id)  # a background run going on here stops (elsewhere, it ends unseen)
    for session in request.app[sockets.SESSIONS]:  # open sockets here forget it (other instances' keep it until they end)
        session.forget(response_id)
    if not await request.app[STORE].delete(response_id, project_of(request)):
        raise response_not_found(response_id)
    return json_response(encode_body(Deleted(response_id)))


async def list_input_items(request: web.Request) -> web.Response:
    page = page_query(request)
    response_id = _response_id(request)
    found = await request.app[STORE].input_items(response_id, project_of(request), page.after, page.limit, page.descending)
    if found is None:
        raise response_not_found(response_id)
    return item_list(*found)


def create_app(config: Config) -> web.Application:
    router = Router(config.models)
    store = Store(config.database_url)
    access = Access(store, config.master_key)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[observe.observe, _guard(access)])
    app[organization.ACCESS] = access
    app.on_response_prepare.append(observe.add_request_id)
    tally = usage.Tally(store)
    app[LIMITER] = limiter = Limiter(config.redis_url)
    app[observe.OBSERVED] = observed = observe.Metrics(tally, limiter)
    store.start_maintenance(config.instance_ttl)
    state.use(Keyring(sealing_secrets(config) or [store.generated_secret("encrypted_content")]))
    app[ROUTER] = router
    app[STORE] = store
    search = SearXNG(config.web_search.url, config.web_search.max_results, config.web_search.timeout) if config.web_search else None
    limits = config.mcp_limits
    mcp_access = McpAccess(config.mcp_allow_hosts, config.mcp_servers, stdio_servers(config.mcp_servers, limits), limits)
    app[ENGINE] = engine = Engine(router, store, config.create_missing_conversations, search, mcp_access)
    app[prompts.PROMPTS] = templates = Prompts(store, config.prompts_dir)
    app[runs.FEED] = feed = open_feed(config.redis_url)
    store.outbox = webhooks.outbox(config.webhooks)
    deliverer = webhooks.Deliverer(store, config.webhooks)
    app[runs.RUNNER] = runner = Runner(engine, store, feed, deliverer, config.background.max_concurrent, config.background.poll, observed.ended)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/organization/usage", usage.report)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_post("/v1/responses", create_response)
    app[sockets.SESSIONS] = weakref.WeakSet()

    async def open_socket(request: web.Request) -> web.StreamResponse:
        return await sockets.open_socket(request, engine, templates, observed, limiter, config)

    app.router.add_get("/v1/responses", open_socket)
    app.router.add_post("/v1/responses/input_tokens", input_tokens)
    app.router.add_post("/v1/responses/compact", compact_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", cancel_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
    conversations.add_routes(app)
    prompts.add_routes(app)
    organization.add_routes(app)
    console.add_routes(app)

    async def start(_: web.Application) -> None:
        runner.start()
        tally.start()
        access.start()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, templates.reload)

    async def shutdown(_: web.Application) -> None:
        await runner.shutdown(config.shutdown_grace)
        await tally.stop()
        await access.stop()

    async def close(_: web.Application) -> None:
        await close_session()
        await feed.close()
        await limiter.close()
        await mcp_access.close()
        store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(close)
    return app
