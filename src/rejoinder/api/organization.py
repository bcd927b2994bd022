"""The organization API, for the master key only: projects and their API keys
(`/v1/organization/projects…`), shaped as OpenAI's organization objects. A key's value is shown
once, in the answer that creates it; the gateway keeps only its digest (see `engine.access.principals`).
Projects and keys declared in the config file are shown here but change only there."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from rejoinder.api.replies import STORE, json_response, limit_after, object_list, read_body
from rejoinder.engine.access import Access, Principal, make_key
from rejoinder.protocol.access import Create, Limits, UpdateProject, decode, limits_of
from rejoinder.protocol.errors import ApiError, not_found
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.store import access
from rejoinder.store.schema import DEFAULT_PROJECT

ACCESS = web.AppKey("access", Access)
_limits = msgspec.json.Decoder(Limits).decode


def project_view(project: access.Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "object": "organization.project",
        "name": project.name,
        "created_at": project.created_at,
        "archived_at": project.archived_at,
        "status": "archived" if project.archived_at is not None else "active",
        "managed_by": project.managed,
        **msgspec.to_builtins(_limits(project.limits)),
    }


def key_view(key: access.Key) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        "id": key.id,
        "name": key.name,
        "redacted_value": key.redacted_value,
        "created_at": key.created_at,
        "last_used_at": None,
        "owner_project_access": "active",
        "owner": {"type": "service_account", "service_account": {"id": key.id, "name": key.name, "created_at": key.created_at, "role": "member"}},
        "project_id": key.project,
        "managed_by": key.managed,
        **msgspec.to_builtins(_limits(key.limits)),
    }


async def _project(request: web.Request) -> access.Project:
    project_id = request.match_info["project_id"]
    found = await request.app[STORE].transact(access.project, project_id) if is_valid_id(project_id) else None
    if found is None:
        raise not_found(f"No project found with id '{project_id[:64]}'.")
    return found


def _api_managed(project: access.Project) -> None:
    if project.managed != "api":
        raise ApiError(409, f"Project '{project.id}' is declared in the config file: change it there.", code="managed_by_config")


async def _changed(request: web.Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A change to projects or keys, after which this instance forgets the keys it knows."""
    try:
        return await request.app[STORE].write(fn, *args, **kwargs)
    finally:
        request.app[ACCESS].changed()


async def create_project(request: web.Request) -> web.Response:
    body = decode(Create, await read_body(request))
    project = access.Project(new_id("proj"), body.name, int(time.time()), None, msgspec.json.encode(limits_of(body)), "api")
    return json_response(project_view(await _changed(request, access.create_project, project)))


async def list_projects(request: web.Request) -> web.Response:
    limit, after = limit_after(request)
    archived = request.query.get("include_archived", "false").lower() == "true"
    rows, more = await request.app[STORE].transact(access.project_page, after, limit, archived)
    return object_list([project_view(row) for row in rows], more)


async def get_project(request: web.Request) -> web.Response:
    return json_response(project_view(await _project(request)))


async def update_project(request: web.Request) -> web.Response:
    project = await _project(request)
    _api_managed(project)
    body = decode(UpdateProject, await read_body(request))
    values: dict[str, Any] = {"limits": msgspec.json.encode(limits_of(body, _limits(project.limits)))}
    if isinstance(body.name, str):
        values["name"] = body.name
    return json_response(project_view(await _changed(request, access.update_project, project.id, **values)))


async def archive_project(request: web.Request) -> web.Response:
    """Archive a project: its keys stop working; what it stored stays (and stays its own)."""
    project = await _project(request)
    _api_managed(project)
    if project.id == DEFAULT_PROJECT:
        raise ApiError(400, "The default project (the master key's) cannot be archived.", code="invalid_request")
    if project.archived_at is not None:
        return json_response(project_view(project))
    return json_response(project_view(await _changed(request, access.update_project, project.id, archived_at=int(time.time()))))


async def create_key(request: web.Request) -> web.Response:
    project = await _project(request)
    if project.archived_at is not None:
        raise ApiError(400, f"Project '{project.id}' is archived: it takes no new keys.", code="project_archived")
    body = decode(Create, await read_body(request))
    key, value, digest = make_key(project.id, body.name, limits_of(body))
    return json_response({**key_view(await _changed(request, access.create_key, key, digest)), "value": value})


async def list_keys(request: web.Request) -> web.Response:
    project = await _project(request)
    limit, after = limit_after(request)
    rows, more = await request.app[STORE].transact(access.key_page, project.id, after, limit)
    return object_list([key_view(row) for row in rows], more)


async def _key(request: web.Request) -> access.Key:
    project = await _project(request)
    key_id = request.match_info["key_id"]
    found = await request.app[STORE].transact(access.key, project.id, key_id) if is_valid_id(key_id) else None
    if found is None:
        raise not_found(f"No API key found with id '{key_id[:64]}' in project '{project.id}'.")
    return found


async def get_key(request: web.Request) -> web.Response:
    return json_response(key_view(await _key(request)))


async def delete_key(request: web.Request) -> web.Response:
    """Revoke a key: it stops working here at once, and on every instance within a second."""
    key = await _key(request)
    if key.managed != "api":
        raise ApiError(409, f"API key '{key.id}' is declared in the config file: remove it there.", code="managed_by_config")
    await _changed(request, access.delete_key, key.project, key.id)
    return json_response({"object": "organization.project.api_key.deleted", "id": key.id, "deleted": True})


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise ApiError(403, "This needs the master key: a project's API key cannot use the organization API or /metrics.", code="insufficient_permissions")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/organization/projects", create_project)
    app.router.add_get("/v1/organization/projects", list_projects)
    app.router.add_get("/v1/organization/projects/{project_id}", get_project)
    app.router.add_post("/v1/organization/projects/{project_id}", update_project)
    app.router.add_delete("/v1/organization/projects/{project_id}", archive_project)
    app.router.add_post("/v1/organization/projects/{project_id}/archive", archive_project)
    app.router.add_post("/v1/organization/projects/{project_id}/api_keys", create_key)
    app.router.add_get("/v1/organization/projects/{project_id}/api_keys", list_keys)
    app.router.add_get("/v1/organization/projects/{project_id}/api_keys/{key_id}", get_key)
    app.router.add_delete("/v1/organization/projects/{project_id}/api_keys/{key_id}", delete_key)
