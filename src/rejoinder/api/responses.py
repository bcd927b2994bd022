"""The Responses API over HTTP: `/v1/responses` and its sub-resources, `/v1/models`.

Each handler decodes, asks the engine, and turns its answer into bytes: a JSON body, or a
stream of server-sent events (`SseStream`, the run's sink). What happens to a response is the
engine's (`engine.engine` starts one, `engine.responses` reads, follows, cancels and deletes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from rejoinder.api.observe import OBSERVED
from rejoinder.api.prompts import PROMPTS
from rejoinder.api.replies import SSE_HEADERS, item_list, json_response, page_query, principal_of, project_of, read_body
from rejoinder.engine.access import Limiter, Principal
from rejoinder.engine.background import Runner
from rejoinder.engine.engine import Engine
from rejoinder.engine.responses import Responses
from rejoinder.engine.router import Router
from rejoinder.engine.sinks import Sink, Stream
from rejoinder.protocol.errors import ApiError, invalid, response_not_found
from rejoinder.protocol.ids import is_valid_id
from rejoinder.protocol.request import Request
from rejoinder.protocol.response import Deleted, Model, ModelList, encode, parse_include, view
from rejoinder.protocol.sse import frames

log = logging.getLogger("rejoinder.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ENGINE = web.AppKey("engine", Engine)
ROUTER = web.AppKey("router", Router)
LIMITER = web.AppKey("limiter", Limiter)
RUNNER = web.AppKey("runner", Runner)
RESPONSES = web.AppKey("responses", Responses)


class SseStream(Stream):
    """A run's sink for a client's server-sent events: each batch in one write, the last with
    the end of the body."""

    def __init__(self, stream: web.StreamResponse) -> None:
        super().__init__()
        self.stream = stream

    async def send(self, events: list[tuple[str, bytes]], last: bool) -> None:
        joined = frames(events)
        await (self.stream.write_eof(joined) if last else self.stream.write(joined))


async def list_models(request: web.Request) -> web.Response:
    """The models this key may use."""
    principal = principal_of(request)
    models = [Model(name, owner) for name, owner in request.app[ROUTER].names() if principal.allows(name)]
    return json_response(encode(ModelList(models)))


async def get_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    deployment = request.app[ROUTER].resolve(name, principal_of(request).allows)  # 404 for an unknown name
    if not principal_of(request).allows(name):
        raise ApiError(404, f"The model '{name[:128]}' does not exist or you do not have access to it.", param="model", code="model_not_found")
    return json_response(encode(Model(deployment.name, deployment.owned_by)))


async def _admitted(request: web.Request) -> Principal:
    """A request that calls a model: counted against its principal's rate limits (a 429 when
    over), its answer to carry the `x-ratelimit-*` headers."""
    principal = principal_of(request)
    request["ratelimit"] = await request.app[LIMITER].admit(principal)
    return principal


def _warned(warnings: list[str]) -> dict[str, str]:
    return {"x-rejoinder-warning": "; ".join(warnings)} if warnings else {}


async def create_response(request: web.Request) -> web.StreamResponse:
    request["mode"] = "json"  # until known better: how the answer goes, for the metrics
    principal = await _admitted(request)
    decoded, raw = await request.app[PROMPTS].decode(await read_body(request), principal.project)
    params = decoded.body
    request["mode"] = "background" if params.background else "sse" if params.stream else "json"
    request["deployment"] = request.app[ROUTER].resolve(params.model, principal.allows)
    if params.background:
        return await _create_background(request, decoded, raw)
    if not params.stream:
        request["run"] = run = await request.app[ENGINE].start(decoded, principal, Sink())
        return json_response(view(await run.finish(), params.include), headers=_warned(run.warnings))
    stream = web.StreamResponse(headers=SSE_HEADERS)
    request["run"] = run = await request.app[ENGINE].start(decoded, principal, SseStream(stream))
    stream.headers.update(_warned(run.warnings))
    try:
        await stream.prepare(request)
        await run.finish()
    except ConnectionError:
        log.info("client went away during %s", run.response.id)
    except Exception:  # the headers are out: a second HTTP response cannot follow; end the body
        log.exception("stream of %s broke after it started", run.response.id)
        stream.force_close()
    finally:
        await run.release()  # a client gone before the first byte still releases the upstream
    return stream


async def _create_background(request: web.Request, decoded: Request, raw: bytes) -> web.StreamResponse:
    """Queue the run and answer at once: its `queued` form, or its stream from the start."""
    response, warnings = await request.app[RUNNER].submit(decoded, principal_of(request), raw)
    if not decoded.body.stream:
        return json_response(view(encode(response), decoded.body.include), headers=_warned(warnings))
    return await _follow(request, response.id, -1, _warned(warnings))


async def input_tokens(request: web.Request) -> web.Response:
    """The input tokens a create request with this body would use (its conversation, previous
    response, prompt and truncation applied)."""
    principal = principal_of(request)
    decoded, _ = await request.app[PROMPTS].decode(await read_body(request), principal.project)
    return json_response({"object": "response.input_tokens", "input_tokens": await request.app[ENGINE].input_tokens(decoded, principal)})


async def compact_response(request: web.Request) -> web.Response:
    """A context compacted: its user messages and a sealed summary of the rest (`engine.context.compaction`)."""
    principal = await _admitted(request)
    decoded, _ = await request.app[PROMPTS].decode(await read_body(request), principal.project)
    body, deployment, used = await request.app[ENGINE].compact(decoded, principal)
    request.app[OBSERVED].compacted(deployment, principal, used)
    return json_response(body)


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
        raw = request.query.get("starting_after", "-1")
        try:
            starting_after = int(raw)
        except ValueError:
            raise invalid("starting_after", f"Invalid 'starting_after': expected an integer, got '{raw[:32]}'.") from None
        await request.app[RESPONSES].streamable(response_id, project_of(request))
        return await _follow(request, response_id, starting_after, {})
    return json_response(view(await request.app[RESPONSES].get(response_id, project_of(request)), include))


async def _follow(request: web.Request, response_id: str, starting_after: int, headers: dict[str, str]) -> web.StreamResponse:
    """A background run's events, as server-sent events, until it ends."""
    stream = web.StreamResponse(headers={**SSE_HEADERS, **headers})
    await stream.prepare(request)
    try:
        await request.app[RESPONSES].follow(response_id, starting_after, stream.write)
        await stream.write_eof()
    except ConnectionError:
        pass  # the follower left; the run goes on
    return stream


async def cancel_response(request: web.Request) -> web.Response:
    return json_response(await request.app[RESPONSES].cancel(_response_id(request), project_of(request)))


async def delete_response(request: web.Request) -> web.Response:
    response_id = _response_id(request)
    await request.app[RESPONSES].delete(response_id, project_of(request))
    return json_response(encode(Deleted(response_id)))


async def list_input_items(request: web.Request) -> web.Response:
    page = page_query(request)
    response_id = _response_id(request)
    return item_list(*await request.app[RESPONSES].input_items(response_id, project_of(request), page.after, page.limit, page.descending))


def add_routes(app: web.Application, open_socket: Handler) -> None:
    """The routes, `POST /v1/responses` first and with WebSocket mode's `GET` on the same
    resource (the router finds the hot path at once)."""
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses", open_socket)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_post("/v1/responses/input_tokens", input_tokens)
    app.router.add_post("/v1/responses/compact", compact_response)
    app.router.add_get("/v1/responses/{response_id}", get_response)
    app.router.add_delete("/v1/responses/{response_id}", delete_response)
    app.router.add_post("/v1/responses/{response_id}/cancel", cancel_response)
    app.router.add_get("/v1/responses/{response_id}/input_items", list_input_items)
