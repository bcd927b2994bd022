"""HTTP in, engine calls, bytes out. No business logic lives here.

One middleware guards every route: the master key on `/v1/`, and OpenAI's error envelope for
every failure, including aiohttp's own (unknown route, wrong method, body too large), so no
client ever sees a bare 500 or a stack trace.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import weakref
from typing import Any

from aiohttp import web

from rejoinder.api import conversations, observe, prompts, runs, sockets, usage
from rejoinder.api.replies import SSE_HEADERS, STORE, item_list, json_response, page_query, read_body, response_not_found
from rejoinder.config import Config, sealing_secrets
from rejoinder.engine import webhooks
from rejoinder.engine.background import Runner
from rejoinder.engine.engine import Engine
from rejoinder.engine.feed import open_feed
from rejoinder.engine.prompts import Prompts
from rejoinder.engine.router import Router
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


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.body(), error.status, error.headers)
    response["error_code"] = error.code  # for the metrics (see api.observe)
    return response


def _guard(master_key: str | None):
    expected = f"Bearer {master_key}".encode() if master_key else None

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if expected is not None and (request.path.startswith("/v1/") or request.path == "/metrics"):
                _authorize(request, expected)
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


def _authorize(request: web.Request, expected: bytes) -> None:
    given = request.headers.get("Authorization")
    if not given:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    # aiohttp keeps undecodable header bytes as surrogates: encode them back, never fail on them
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


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
    return json_response(encode_body(ModelList([Model(name, owner) for name, owner in request.app[ROUTER].names()])))


async def get_model(request: web.Request) -> web.Response:
    deployment = request.app[ROUTER].resolve(request.match_info["model"])  # 404 for an unknown name
    return json_response(encode_body(Model(deployment.name, deployment.owned_by)))


async def create_response(request: web.Request) -> web.StreamResponse:
    request["mode"] = "json"  # until known better: how the answer goes, for the metrics
    decoded, raw = await request.app[prompts.PROMPTS].decode(await read_body(request))
    params = decoded.body
    request["mode"] = "background" if params.background else "sse" if params.stream else "json"
    request["deployment"] = request.app[ROUTER].resolve(params.model)
    if params.background:
        return await runs.create_background(request, request.app[STORE], decoded, raw)
    request["run"] = run = await request.app[ENGINE].start(decoded)
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
    decoded, _ = await request.app[prompts.PROMPTS].decode(await read_body(request))
    return json_response({"object": "response.input_tokens", "input_tokens": await request.app[ENGINE].input_tokens(decoded)})


async def metrics(request: web.Request) -> web.Response:
    queued = await request.app[STORE].transact(queue_depth)
    return web.Response(body=request.app[observe.OBSERVED].exposition(queued), content_type="text/plain", charset="utf-8")


async def compact_response(request: web.Request) -> web.Response:
    """A context compacted: its user messages and a sealed summary of the rest (`engine.compaction`)."""
    decoded, _ = await request.app[prompts.PROMPTS].decode(await read_body(request))
    return json_response(await request.app[ENGINE].compact(decoded))


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
    body = await request.app[STORE].get(response_id)
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
    if not await request.app[STORE].delete(response_id):
        raise response_not_found(response_id)
    return json_response(encode_body(Deleted(response_id)))


async def list_input_items(request: web.Request) -> web.Response:
    page = page_query(request)
    response_id = _response_id(request)
    found = await request.app[STORE].input_items(response_id, page.after, page.limit, page.descending)
    if found is None:
        raise response_not_found(response_id)
    return item_list(*found)


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[observe.observe, _guard(config.master_key)])
    app.on_response_prepare.append(observe.add_request_id)
    router = Router(config.models)
    store = Store(config.database_url)
    tally = usage.Tally(store)
    app[observe.OBSERVED] = observed = observe.Metrics(tally)
    store.start_maintenance(config.instance_ttl)
    state.use(Keyring(sealing_secrets(config) or [store.generated_secret("encrypted_content")]))
    app[ROUTER] = router
    app[STORE] = store
    app[ENGINE] = engine = Engine(router, store, config.create_missing_conversations)
    app[prompts.PROMPTS] = templates = Prompts(store, config.prompts_dir)
    app[runs.FEED] = feed = open_feed(config.redis_url)
    store.outbox = webhooks.outbox(config.webhooks)
    deliverer = webhooks.Deliverer(store, config.webhooks)
    app[runs.RUNNER] = runner = Runner(engine, store, feed, deliverer, config.background.max_concurrent, config.background.poll)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/organization/usage", usage.report)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_post("/v1/responses", create_response)
    app[sockets.SESSIONS] = weakref.WeakSet()

    async def open_socket(request: web.Request) -> web.StreamResponse:
        return await sockets.open_socket(request, engine, templates, observed, config)

    app.router.add_get("/v1/responses", open_socket)
    app.router.add_post("/v1/responses/input_tokens", input_tokens)
    app.router.add_post("/v1/responses/compact", compact_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", cancel_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
    conversations.add_routes(app)
    prompts.add_routes(app)

    async def start(_: web.Application) -> None:
        runner.start()
        tally.start()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, templates.reload)

    async def shutdown(_: web.Application) -> None:
        await runner.shutdown(config.shutdown_grace)
        await tally.stop()

    async def close(_: web.Application) -> None:
        await close_session()
        await feed.close()
        store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(close)
    return app
