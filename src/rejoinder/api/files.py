"""The Files API: `/v1/files` (a multipart upload), its listing, a file, its content, and its
deletion. Files belong to the project that uploaded them; another project's file, or an
expired one, reads as unknown. What a response makes of a `file_id` is `engine.context.files`'.
"""

from __future__ import annotations

import time

import aiohttp
import msgspec
from aiohttp import web
from msgspec import UNSET

from rejoinder.api.replies import STORE, arriving, descending, json_response, limit_after, object_list, project_of
from rejoinder.protocol.errors import ApiError, invalid, not_found
from rejoinder.protocol.files import FileDeleted, FileObject, expires_at, media_type, purpose_of
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.protocol.response import encode
from rejoinder.store import files
from rejoinder.store.files import File

MAX_FILE_BYTES = web.AppKey("max_file_bytes", int)
_FIELD_BYTES = 1024  # a form field other than the file (`purpose`, `expires_after[…]`)


def file_not_found(file_id: str) -> ApiError:
    return not_found(f"No such File object: {file_id[:64]}", param="id")


def _shown(file: File) -> FileObject:
    expiry = file.expires_at if file.expires_at is not None else UNSET
    return FileObject(file.id, file.bytes, file.created_at, file.filename, file.purpose, expiry)


def _id(request: web.Request) -> str:
    value = request.match_info["file_id"]
    if not is_valid_id(value):
        raise file_not_found(value)
    return value


async def _form(request: web.Request, cap: int) -> tuple[dict[str, str], tuple[str, str | None, bytes] | None]:
    """The upload's fields, and its file as `(filename, declared type, bytes)`; a file past `cap`
    bytes is refused as it arrives."""
    if not request.content_type.startswith("multipart/form-data"):
        raise invalid(None, "Files are uploaded as multipart/form-data, with 'file' and 'purpose' fields.", "invalid_body")
    fields: dict[str, str] = {}
    upload = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader):
            raise invalid(None, "A nested multipart body is not an upload this API reads.", "invalid_body")
        if part.name == "file":
            chunks, size = [], 0
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > cap:
                    raise ApiError(413, f"The file is larger than this gateway keeps ({cap} bytes).", param="file", code="file_too_large")
                chunks.append(chunk)
            upload = (part.filename or "upload", part.headers.get("Content-Type"), b"".join(chunks))
        elif part.name:
            value = await part.read(decode=False)
            if len(value) > _FIELD_BYTES:
                raise invalid(part.name[:64], f"The form field '{part.name[:64]}' is too long.")
            fields[part.name] = value.decode("utf-8", "replace")
    return fields, upload


async def create_file(request: web.Request) -> web.Response:
    try:
        async with arriving(request):
            fields, upload = await _form(request, request.app[MAX_FILE_BYTES])
    except ValueError:  # aiohttp's multipart reader on a malformed body
        raise invalid(None, "The multipart body could not be read.", "invalid_body") from None
    if upload is None:
        raise invalid("file", "Missing required parameter: 'file'.", "missing_required_parameter")
    purpose = purpose_of(fields.get("purpose"))
    now = int(time.time())
    expiry = expires_at(fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]"), purpose, now)
    filename, declared, content = upload
    file = File(new_id("file"), filename[:512], purpose, media_type(declared, filename), len(content), now, expiry)
    await request.app[STORE].write(files.add, project_of(request), file, content)
    return json_response(encode(_shown(file)))


async def list_files(request: web.Request) -> web.Response:
    limit, after = limit_after(request)
    purpose = request.query.get("purpose")
    found, more = await request.app[STORE].transact(files.page, project_of(request), purpose, after, limit, descending(request))
    return object_list([msgspec.to_builtins(_shown(file)) for file in found], more, no_id="")


async def get_file(request: web.Request) -> web.Response:
    file_id = _id(request)
    file = await request.app[STORE].transact(files.get, project_of(request), file_id)
    if file is None:
        raise file_not_found(file_id)
    return json_response(encode(_shown(file)))


async def file_content(request: web.Request) -> web.Response:
    file_id = _id(request)
    found = (await request.app[STORE].transact(files.contents, project_of(request), [file_id])).get(file_id)
    if found is None:
        raise file_not_found(file_id)
    file, content = found
    return web.Response(body=content, content_type=file.media_type)


async def delete_file(request: web.Request) -> web.Response:
    file_id = _id(request)
    if not await request.app[STORE].write(files.remove, project_of(request), file_id):
        raise file_not_found(file_id)
    return json_response(encode(FileDeleted(file_id)))


def add_routes(app: web.Application, max_file_bytes: int) -> None:
    app[MAX_FILE_BYTES] = max_file_bytes
    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", get_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
