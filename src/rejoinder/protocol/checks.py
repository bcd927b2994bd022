"""Checks every part of request decoding shares: msgspec's errors in OpenAI's shape, and
free-form JSON the gateway will store and send on."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from rejoinder.protocol.errors import ApiError, invalid

# JSON a client sends inside free-form fields (tool schemas, hosted tools, extra keys) is kept
# and encoded again later: deeper nesting or wider integers than this could not be.
MAX_JSON_DEPTH = 64
_INT_RANGE = (-(2**63), 2**64 - 1)

T = TypeVar("T")

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"missing required field `(?P<field>[^`]+)`")


def validation_error(exc: msgspec.ValidationError, prefix: str = "") -> ApiError:
    """Turn msgspec's message into OpenAI's shape: a sentence plus the dotted `param`."""
    text = str(exc)
    match = _PATH.search(text)
    path = match.group("path") if match else ""
    sentence = text[: match.start()] if match else text
    missing = _FIELD.search(sentence)
    if missing:
        path = f"{path}.{missing.group('field')}"
    param = (prefix + path.replace("[...]", "")).lstrip(".") or None
    if missing:
        return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    where = f"Invalid '{param}': " if param else "Invalid request body: "
    return invalid(param, where + sentence[0].lower() + sentence[1:] + ".")


def decode_body(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """A request body with `decoder`: every way it can be wrong is a 400 in the envelope."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ApiError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON object (UTF-8) as the request body.",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise too_deep(None) from None


def too_deep(param: str | None) -> ApiError:
    return invalid(param, f"The request nests JSON more than {MAX_JSON_DEPTH} levels deep.", "nesting_too_deep")


def check_json(value: Any, param: str, depth: int = 0) -> None:
    """Free-form JSON a client sent is something the gateway can store and send on: bounded
    nesting and integers that fit 64 bits (msgspec and Python take any size; encoders do not)."""
    if isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            raise too_deep(param)
        for entry in value.values() if isinstance(value, dict) else value:
            check_json(entry, param, depth + 1)
    elif type(value) is int and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise invalid(param, f"Invalid '{param}': an integer is out of range (64 bits at most).")


def type_of(entry: Any) -> str | None:
    """An entry's `type` when it is a string: a list or object there is simply no known type."""
    kind = entry.get("type") if isinstance(entry, dict) else None
    return kind if isinstance(kind, str) else None
