"""Provider-opaque reasoning state, carried in a reasoning item's `encrypted_content`.

Each provider seals what it must get back on the next turn (Anthropic thinking blocks and their
signatures, Gemini thought signatures, an OpenAI upstream's own encrypted reasoning) under its
own tag. A provider unseals only its own tag, so state that belongs to another provider in a
mixed chain is dropped rather than sent where it would be rejected. Sealed, not encrypted: the
content is the provider's, and stays opaque to clients only by convention.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


def seal(provider: str, payload: Any) -> str:
    return f"rj1.{provider}.{base64.urlsafe_b64encode(orjson.dumps(payload)).decode()}"


def unseal(provider: str, value: str | None) -> Any | None:
    """The payload `provider` sealed into `value`, or None when it is not that provider's."""
    tag = f"rj1.{provider}."
    if not value or not value.startswith(tag):
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(value[len(tag) :]))
    except (binascii.Error, ValueError):
        return None
