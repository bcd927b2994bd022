"""Prompt templates API bodies (`/v1/prompts…`), as a client sends them. What a template may
hold is checked by `engine.context.prompt_templates.check_template`."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from rejoinder.protocol.checks import decode_body


class CreatePrompt(Struct):
    template: Any
    id: str | None = None


class NewVersion(Struct):
    template: Any


class SetDefault(Struct):
    default_version: str


_create = msgspec.json.Decoder(CreatePrompt)
_version = msgspec.json.Decoder(NewVersion)
_default = msgspec.json.Decoder(SetDefault)


def decode_create(raw: bytes) -> CreatePrompt:
    return decode_body(_create, raw)


def decode_version(raw: bytes) -> Any:
    """A new version's template."""
    return decode_body(_version, raw).template


def decode_default(raw: bytes) -> str:
    return decode_body(_default, raw).default_version
