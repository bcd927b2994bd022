"""Validation of everything the gateway emits against the official OpenAI OpenAPI spec."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("specs") / "openai-openapi.json"  # vendored: see specs/README.md
_SPEC = json.loads(SPEC_PATH.read_text())
_REGISTRY = Registry().with_resource("urn:openai", Resource.from_contents(_SPEC, default_specification=DRAFT202012))
_SCHEMAS = _SPEC["components"]["schemas"]


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    assert name in _SCHEMAS, f"no schema {name} in the spec"
    return Draft202012Validator({"$ref": f"urn:openai#/components/schemas/{name}"}, registry=_REGISTRY)


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Stream event `type` → the schema that describes it."""
    names = {}
    for ref in _SCHEMAS["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[1]
        enum = _SCHEMAS[name]["properties"]["type"].get("enum", [])
        for value in enum:
            names[value] = name
    return names


def check(schema: str, value: Any) -> None:
    error = best_match(_validator(schema).iter_errors(value))
    assert error is None, f"{schema} does not validate: {error.message} at {list(error.absolute_path)}\n{json.dumps(value)[:2000]}"


def check_response(response: dict) -> None:
    check("Response", response)


def check_event(event: dict) -> None:
    schema = _event_schemas().get(event["type"])
    assert schema, f"unknown stream event type {event['type']}"
    check(schema, event)
