"""A `file_id` in a turn's input (`input_file`, `input_image`) becomes the stored file's bytes,
inline, before any provider sees it: a data URL, which every translator already reads (an
Anthropic document or image block, Gemini inline data, a Chat Completions file or image part,
the local model's text). So providers stay pure, and an id of this gateway's never reaches an
upstream that would read it as its own.

The stored items keep the `file_id` the client sent; each turn that replays them reads the
bytes again. A turn with no `file_id` pays one scan of its message parts.
"""

from __future__ import annotations

import base64

import msgspec

from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.items import InputFile, InputImage, Item, Message
from rejoinder.store import files
from rejoinder.store.files import File
from rejoinder.store.repository import Store

_BY_ID = (InputFile, InputImage)


def _file_ids(items: list[Item]) -> set[str]:
    return {
        part.file_id
        for item in items
        if type(item) is Message and not isinstance(item.content, str)
        for part in item.content
        if type(part) in _BY_ID and isinstance(part.file_id, str)
    }


async def inlined(store: Store, items: list[Item], project: str) -> list[Item]:
    """`items` with every part that names a file by id holding its bytes instead; an id the
    project does not hold (or that expired) is a 404."""
    wanted = _file_ids(items)
    if not wanted:
        return items
    found = await store.transact(files.contents, project, sorted(wanted))
    missing = wanted - found.keys()
    if missing:
        raise ApiError(404, f"No such File object: {sorted(missing)[0][:64]}", param="input", code="file_not_found")
    return [_with_bytes(item, found) if type(item) is Message and not isinstance(item.content, str) else item for item in items]


def _with_bytes(message: Message, found: dict[str, tuple[File, bytes]]) -> Message:
    parts = [_part(part, *found[part.file_id]) if type(part) in _BY_ID and isinstance(part.file_id, str) else part for part in message.content]  # type: ignore[union-attr]
    return msgspec.structs.replace(message, content=parts)


def _part(part: InputFile | InputImage, file: File, content: bytes) -> InputFile | InputImage:
    url = f"data:{file.media_type};base64,{base64.b64encode(content).decode()}"
    if isinstance(part, InputImage):
        if not file.media_type.startswith("image/"):
            raise invalid("input", f"The file '{file.id}' ({file.filename[:64]}) is not an image: an input_image takes an image file.", "invalid_image")
        return msgspec.structs.replace(part, image_url=url, file_id=msgspec.UNSET)
    return msgspec.structs.replace(part, file_data=url, filename=file.filename, file_id=msgspec.UNSET)
