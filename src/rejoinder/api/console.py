"""The web console (`/console`): its static pages, served from the package (nothing is
fetched at run time), and the few calls it needs that the public API lacks, under
`/v1/console/` and the same guard as the rest of `/v1/`: lists of a project's stored responses
and conversations, and a prompt template's preview. Everything else it does through the
public API, with the key its user signed in with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiohttp import web

from rejoinder.api.organization import ACCESS
from rejoinder.api.prompts import PROMPTS, shown
from rejoinder.api.replies import STORE, json_response, limit_after, object_list, principal_of, project_of, read_body
from rejoinder.engine.context import check_template
from rejoinder.protocol.checks import decode_body
from rejoinder.protocol.errors import invalid
from rejoinder.store import listings

ASSETS = Path(__file__).resolve().parents[1] / "console"
_STATUSES = ("completed", "failed", "incomplete", "cancelled", "in_progress", "queued")


class Preview(msgspec.Struct, forbid_unknown_fields=True):
    template: Any
    variables: dict[str, Any] = {}


_preview = msgspec.json.Decoder(Preview)


async def page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-cache"})


def _seconds(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise invalid(name, f"Invalid '{name}': expected unix seconds.")
    return int(value)


async def list_responses(request: web.Request) -> web.Response:
    """`GET /v1/console/responses?limit&after&model&status&key_id&since&until&previous_response_id`:
    the project's stored responses, newest first, each with its columns and its body as stored."""
    limit, after = limit_after(request)
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in _STATUSES:
        raise invalid("status", f"Invalid 'status': expected one of {', '.join(_STATUSES)}.")
    only = listings.ResponseFilter(
        query.get("model") or None,
        status,
        query.get("key_id") or None,
        _seconds(request, "since"),
        _seconds(request, "until"),
        query.get("previous_response_id") or None,
    )
    rows, more = await request.app[STORE].transact(listings.responses_page, project_of(request), after, limit, only)
    data = [
        {"id": row.id, "created_at": row.created_at, "status": row.status, "model": row.model, "key_id": row.key_id, "response": msgspec.Raw(row.body)}
        for row in rows
    ]
    return object_list(data, more)


async def list_conversations(request: web.Request) -> web.Response:
    limit, after = limit_after(request)
    rows, more = await request.app[STORE].transact(listings.conversations_page, project_of(request), after, limit)
    data = [{"id": row.id, "object": "conversation", "created_at": row.created_at, "metadata": msgspec.Raw(row.metadata)} for row in rows]
    return object_list(data, more)


async def preview_prompt(request: web.Request) -> web.Response:
    """`POST /v1/console/prompts/preview {template, variables}`: what a request naming this
    template with these variables would run with (its instructions and input messages)."""
    body = decode_body(_preview, await read_body(request))
    template = check_template(body.template)
    instructions, rendered = await request.app[PROMPTS].render(template, body.variables)
    return json_response(orjson.dumps({"instructions": instructions, "input": rendered}))


async def me(request: web.Request) -> web.Response:
    """`GET /v1/console/me`: who the signed-in key is (its project, whether it is the master key)."""
    principal = principal_of(request)
    return json_response({"project": principal.project, "key_id": principal.key_id, "admin": principal.admin})


async def prompt_versions(request: web.Request) -> web.Response:
    """`GET /v1/console/prompts/{prompt_id}/versions`: every version of a prompt, oldest first."""
    found = await request.app[PROMPTS].versions(request.match_info["prompt_id"], project_of(request))
    return json_response({"object": "list", "data": [shown(version) for version in found]})


async def is_open(request: web.Request) -> web.Response:
    """`GET /console/open`: whether the gateway has no master key, so that the sign-in page can say
    it is open before anyone signs in (any request without a key would tell as much)."""
    return json_response({"open": request.app[ACCESS].master is None})


async def to_console(_: web.Request) -> web.Response:
    """`/` and `/console/` lead to the console."""
    return web.Response(status=302, headers={"Location": "/console"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", page)
    app.router.add_get("/", to_console)
    app.router.add_get("/console/", to_console)
    app.router.add_get("/console/open", is_open)
    app.router.add_static("/console/assets", ASSETS)
    app.router.add_get("/v1/console/responses", list_responses)
    app.router.add_get("/v1/console/conversations", list_conversations)
    app.router.add_get("/v1/console/me", me)
    app.router.add_get("/v1/console/prompts/{prompt_id}/versions", prompt_versions)
    app.router.add_post("/v1/console/prompts/preview", preview_prompt)
