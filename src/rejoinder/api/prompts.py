"""The prompt templates API: `/v1/prompts`. Versions are immutable; a new one becomes the
default only when set. Prompts from `prompts_dir` are listed and read here but change only in
their files (a write to one is a 409)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from rejoinder.api.replies import STORE, json_response, project_of, read_body
from rejoinder.engine.context import Found, Prompts, check_template, found_of
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.protocol.prompts import decode_create, decode_default, decode_version
from rejoinder.store import prompts as stored

PROMPTS = web.AppKey("prompts", Prompts)


def shown(found: Found) -> dict[str, Any]:
    return {
        "id": found.id,
        "object": "prompt",
        "version": found.version,
        "default_version": found.default_version,
        "template": found.template,
        "created_at": found.created_at,
        "source": "prompts_dir" if found.from_file else "api",
    }


def _writable(request: web.Request, prompt_id: str) -> None:
    if prompt_id in request.app[PROMPTS].files:
        raise ApiError(409, f"Prompt '{prompt_id}' is defined in prompts_dir: change its file (and send SIGHUP) instead.", code="prompt_read_only")


def _id(request: web.Request) -> str:
    prompt_id = request.match_info["prompt_id"]
    if not is_valid_id(prompt_id):
        raise invalid("prompt_id", "Invalid prompt id: expected 1 to 64 printable ASCII characters.")
    return prompt_id


async def create_prompt(request: web.Request) -> web.Response:
    body = decode_create(await read_body(request))
    prompt_id = body.id or new_id("pmpt")
    if not is_valid_id(prompt_id):
        raise invalid("id", "Invalid 'id': expected 1 to 64 printable ASCII characters.")
    _writable(request, prompt_id)
    template = check_template(body.template)
    try:
        row = await request.app[STORE].write(stored.create, prompt_id, project_of(request), msgspec.json.encode(template), int(time.time()))
    except IntegrityError:
        raise ApiError(409, f"A prompt with id '{prompt_id}' already exists: add a version to it instead.", param="id", code="prompt_exists") from None
    return json_response(shown(found_of(row)))


async def add_version(request: web.Request) -> web.Response:
    prompt_id = _id(request)
    _writable(request, prompt_id)
    template = check_template(decode_version(await read_body(request)))
    row = await request.app[STORE].write(stored.add_version, prompt_id, project_of(request), msgspec.json.encode(template), int(time.time()))
    if row is None:
        raise ApiError(404, f"Prompt with id '{prompt_id}' not found.", code="not_found")
    return json_response(shown(found_of(row)))


async def list_prompts(request: web.Request) -> web.Response:
    prompts = request.app[PROMPTS]
    files = [await prompts.find(prompt_id, None, project_of(request)) for prompt_id in sorted(prompts.files)]
    rows = [found_of(row) for row in await request.app[STORE].transact(stored.listing, project_of(request)) if row.prompt_id not in prompts.files]
    return json_response({"object": "list", "data": [shown(found) for found in files + rows]})


async def get_prompt(request: web.Request) -> web.Response:
    found = await request.app[PROMPTS].find(_id(request), request.query.get("version"), project_of(request))
    return json_response(shown(found))


async def set_default(request: web.Request) -> web.Response:
    prompt_id = _id(request)
    _writable(request, prompt_id)
    version = decode_default(await read_body(request))
    row = await request.app[STORE].write(stored.set_default, prompt_id, project_of(request), int(version)) if version.isdigit() else None
    if row is None:
        await request.app[PROMPTS].find(prompt_id, None, project_of(request))  # a 404 for the prompt itself, if that is what is missing
        raise ApiError(404, f"Prompt '{prompt_id}' has no version '{version[:64]}'.", param="default_version", code="not_found")
    return json_response(shown(found_of(row)))


async def delete_prompt(request: web.Request) -> web.Response:
    prompt_id = _id(request)
    _writable(request, prompt_id)
    if not await request.app[STORE].write(stored.remove, prompt_id, project_of(request)):
        raise ApiError(404, f"Prompt with id '{prompt_id}' not found.", code="not_found")
    return json_response({"id": prompt_id, "object": "prompt.deleted", "deleted": True})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/prompts", create_prompt)
    app.router.add_get("/v1/prompts", list_prompts)
    app.router.add_get("/v1/prompts/{prompt_id}", get_prompt)
    app.router.add_post("/v1/prompts/{prompt_id}", set_default)
    app.router.add_delete("/v1/prompts/{prompt_id}", delete_prompt)
    app.router.add_post("/v1/prompts/{prompt_id}/versions", add_version)
