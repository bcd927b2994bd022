"""Hosted tools' items checked against OpenAI's schemas: a client may send them back as input
(`mcp_approval_response`, `web_search_call`, …), and one that does not match its schema is a
400 naming the field, rather than stored and replayed to an upstream as sent.

The schemas are `hosted_items.json`: the part of OpenAI's OpenAPI file (MIT, see
`hosted_items.LICENSE`) that describes these items as input and as output, closed over its
references; `tests/spec.py` extracts it and `tests/test_conformance.py` keeps it equal to the
file the tests vendor. It is read, and a type's validator built, only when an item of that
type first arrives: a request without hosted items pays nothing.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from rejoinder.protocol.errors import invalid


@functools.cache
def _schemas() -> dict[str, Any]:
    return json.loads(Path(__file__).with_name("hosted_items.json").read_text())


@functools.cache
def _validators(kind: str) -> list[Any]:
    from jsonschema import Draft202012Validator  # its import is paid by requests that use it
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = {"components": {"schemas": _schemas()["schemas"]}}
    registry = Registry().with_resource("urn:hosted", Resource.from_contents(spec, default_specification=DRAFT202012))
    return [Draft202012Validator({"$ref": f"urn:hosted#/components/schemas/{name}"}, registry=registry) for name in _schemas()["items"][kind]]


def check_hosted(raw: dict[str, Any], where: str) -> None:
    """`raw` (a hosted item, its `type` one of `HOSTED_ITEM_TYPES`) matches one of its type's
    schemas; else a 400 naming the field at fault under `where` (`input[3]`)."""
    from jsonschema.exceptions import best_match

    errors = []
    for validator in _validators(raw["type"]):
        error = best_match(validator.iter_errors(raw))
        if error is None:
            return
        errors.append(error)
    error = min(errors, key=lambda e: len(e.absolute_path))  # any variant's first fault: they share their fields
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    raise invalid(f"{where}{path}", f"Invalid '{where}{path}': not a valid {raw['type']} item ({_said(error)}).")


def _said(error: Any) -> str:
    """What is wrong, in the schema's words, never quoting the value sent (it may be large)."""
    expected = error.validator_value
    if error.validator == "required":
        return f"{error.message.split(chr(39))[1]} is required"
    if error.validator == "type":
        return "expected " + (expected if isinstance(expected, str) else " or ".join(expected))
    if error.validator in ("enum", "const"):
        return "expected " + " or ".join(json.dumps(value) for value in (expected if error.validator == "enum" else [expected]))
    return f"it fails the schema's '{error.validator}' rule"
