"""Validation of everything the gateway emits against the official OpenAI OpenAPI spec and
the Open Responses spec (both vendored in `specs/`; see its README).

`validating_client()` is the httpx client the tests' SDK uses: every body the gateway sends to
it (Responses, stream events, lists, deletions, models and error envelopes) is validated on the
way in, so a test cannot forget to.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import httpx2 as httpx  # the HTTP client the official SDK is built on
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPECS = Path(__file__).with_name("specs")
_OPENAI = json.loads((SPECS / "openai-openapi.json").read_text())
_OPEN = json.loads((SPECS / "openresponses-openapi.json").read_text())
_OPENAI_AS_PUBLISHED = json.loads((SPECS / "openai-openapi.json").read_text())  # without the patches below
# Where OpenAI's file is stricter than OpenAI's live API and its own SDK's types, the live API
# wins, and each such place is patched here, by name: a Response's `usage` is null until the
# response ends (the live API sends `"usage": null` in `response.created`; the SDK types it
# `Optional[ResponseUsage]`; Open Responses requires the key, null allowed).
_OPENAI["components"]["schemas"]["Response"]["allOf"][2]["properties"]["usage"] = {"anyOf": [{"$ref": "#/components/schemas/ResponseUsage"}, {"type": "null"}]}
# WebSocket steering ends a response `incomplete` with reason `steered`: the SDK (3.54) types the
# reason with it, the file predates it.
_OPENAI["components"]["schemas"]["Response"]["allOf"][2]["properties"]["incomplete_details"]["anyOf"][0]["properties"]["reason"]["enum"].append("steered")
_REGISTRY = Registry().with_resources(
    [
        ("urn:openai", Resource.from_contents(_OPENAI, default_specification=DRAFT202012)),
        ("urn:openresponses", Resource.from_contents(_OPEN, default_specification=DRAFT202012)),
    ]
)
# The spec documents DELETE /responses/{id} as "OK" with no body schema; this is its body.
DELETED = {
    "type": "object",
    "required": ["id", "object", "deleted"],
    "properties": {"id": {"type": "string"}, "object": {"const": "response"}, "deleted": {"const": True}},
    "additionalProperties": False,
}


@functools.cache
def _validator(spec: str, name: str) -> Draft202012Validator:
    schemas = (_OPENAI if spec == "openai" else _OPEN)["components"]["schemas"]
    assert name in schemas, f"no schema {name} in the {spec} spec"
    return Draft202012Validator({"$ref": f"urn:{spec}#/components/schemas/{name}"}, registry=_REGISTRY)


def _event_schemas(spec: dict, union: list[dict]) -> dict[str, str]:
    """Stream event `type` → the schema that describes it."""
    names = {}
    for ref in union:
        name = ref["$ref"].rsplit("/", 1)[1]
        for value in spec["components"]["schemas"][name]["properties"]["type"].get("enum", []):
            names[value] = name
    return names


_OPENAI_EVENTS = _event_schemas(_OPENAI, _OPENAI["components"]["schemas"]["ResponseStreamEvent"]["anyOf"])
_OPEN_EVENTS = _event_schemas(_OPEN, _OPEN["paths"]["/responses"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"])


def check(schema: str, value: Any, spec: str = "openai") -> None:
    error = best_match(_validator(spec, schema).iter_errors(value))
    assert error is None, f"{spec} {schema} does not validate: {error.message} at {list(error.absolute_path)}\n{json.dumps(value)[:2000]}"


# Open Responses is a provider-neutral subset: hosted and custom tools and their items are
# outside it, so a Response that uses them is checked against OpenAI's spec alone.
_OPEN_ITEMS = {"message", "function_call", "function_call_output", "reasoning"}


def _open_view(response: dict) -> dict | None:
    """The Response as Open Responses describes it, or None when it is outside the subset.

    Known conflicts, where the gateway follows OpenAI and the field is adjusted here before the
    Open Responses check: Open Responses types an echoed `text.format.schema` as null, where
    OpenAI echoes the schema; and it requires `text.format.description` (null allowed), which
    OpenAI's spec only allows as a string, so the gateway leaves it out when there is none.
    """
    choice = response.get("tool_choice")
    if any(tool.get("type") != "function" for tool in response.get("tools") or ()) or (isinstance(choice, dict) and choice.get("type") != "function"):
        return None
    if any(item.get("type") not in _OPEN_ITEMS for item in response.get("output") or ()) or '"file_citation"' in json.dumps(response):
        return None
    fmt = (response.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        return {**response, "text": {**response["text"], "format": {"description": None, **fmt, "schema": None}}}
    return response


def check_response(response: dict) -> None:
    check("Response", response)
    view = _open_view(response)
    if view is not None:
        check("ResponseResource", view, "openresponses")


def check_event(event: dict) -> None:
    schema = _OPENAI_EVENTS.get(event["type"])
    assert schema, f"unknown stream event type {event['type']}"
    check(schema, event)
    if event["type"] not in _OPEN_EVENTS:  # a hosted or custom tool's event: outside the subset
        return
    if '"file_citation"' in json.dumps(event):  # a hosted tool's citation (file_search's): outside the subset
        return
    if "response" in event:
        view = _open_view(event["response"])
        if view is not None:
            check(_OPEN_EVENTS[event["type"]], {**event, "response": view}, "openresponses")
    elif event.get("item", {}).get("type", "message") in _OPEN_ITEMS:
        check(_OPEN_EVENTS[event["type"]], event, "openresponses")


# Steering's events are in the SDK's types (`ResponsesServerEvent`) but not yet in the spec file:
# those are checked against the SDK's own models.
_STEER_EVENTS = {
    "response.steer.accepted": "ResponseSteerAcceptedEvent",
    "response.steer.pending": "ResponseSteerPendingEvent",
    "response.steer.failed": "ResponseSteerFailedEvent",
}


def check_socket_frame(frame: dict) -> None:
    """A WebSocket mode server frame: a stream event with its lane's `stream_id`, an `error`
    (`ResponseWsError`), or a steering event."""
    if "stream_id" in frame:
        assert isinstance(frame["stream_id"], str) and frame["stream_id"], frame
    if frame["type"] in _STEER_EVENTS:
        from openai.types import responses

        getattr(responses, _STEER_EVENTS[frame["type"]]).model_validate(frame, strict=True)
        return
    if frame["type"] == "error" and "status" in frame:  # the socket's own errors; a run's are stream events
        check("ResponseWsError", frame)
        assert set(frame["error"]) == {"message", "type", "param", "code"}, frame
        return
    check_event({key: value for key, value in frame.items() if key != "stream_id"})
    if "response" in frame:
        check_response(frame["response"])


def check_error(body: dict) -> None:
    check("ErrorResponse", body)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body


_ROUTES = [
    ("POST", re.compile(r"/v1/responses"), check_response),
    ("GET", re.compile(r"/v1/responses/[^/]+"), check_response),
    ("DELETE", re.compile(r"/v1/responses/[^/]+"), lambda body: Draft202012Validator(DELETED).validate(body)),
    ("GET", re.compile(r"/v1/responses/[^/]+/input_items"), lambda body: check("ResponseItemList", body)),
    ("POST", re.compile(r"/v1/responses/[^/]+/cancel"), check_response),
    ("POST", re.compile(r"/v1/responses/input_tokens"), lambda body: check("TokenCountsResource", body)),
    ("POST", re.compile(r"/v1/responses/compact"), lambda body: check("CompactResource", body)),
    ("POST", re.compile(r"/v1/conversations"), lambda body: check("ConversationResource", body)),
    ("GET", re.compile(r"/v1/conversations/[^/]+"), lambda body: check("ConversationResource", body)),
    ("POST", re.compile(r"/v1/conversations/[^/]+"), lambda body: check("ConversationResource", body)),
    ("DELETE", re.compile(r"/v1/conversations/[^/]+"), lambda body: check("DeletedConversationResource", body)),
    ("POST", re.compile(r"/v1/conversations/[^/]+/items"), lambda body: check("ConversationItemList", body)),
    ("GET", re.compile(r"/v1/conversations/[^/]+/items"), lambda body: check("ConversationItemList", body)),
    ("GET", re.compile(r"/v1/conversations/[^/]+/items/[^/]+"), lambda body: check("ConversationItem", body)),
    ("DELETE", re.compile(r"/v1/conversations/[^/]+/items/[^/]+"), lambda body: check("ConversationResource", body)),
    ("POST", re.compile(r"/v1/files"), lambda body: check("OpenAIFile", body)),
    ("GET", re.compile(r"/v1/files"), lambda body: check("ListFilesResponse", body)),
    ("GET", re.compile(r"/v1/files/[^/]+"), lambda body: check("OpenAIFile", body)),
    ("DELETE", re.compile(r"/v1/files/[^/]+"), lambda body: check("DeleteFileResponse", body)),
    ("POST", re.compile(r"/v1/vector_stores"), lambda body: check("VectorStoreObject", body)),
    ("GET", re.compile(r"/v1/vector_stores"), lambda body: check("ListVectorStoresResponse", body)),
    ("GET", re.compile(r"/v1/vector_stores/[^/]+"), lambda body: check("VectorStoreObject", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+"), lambda body: check("VectorStoreObject", body)),
    ("DELETE", re.compile(r"/v1/vector_stores/[^/]+"), lambda body: check("DeleteVectorStoreResponse", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+/search"), lambda body: check("VectorStoreSearchResultsPage", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+/files"), lambda body: check("VectorStoreFileObject", body)),
    ("GET", re.compile(r"/v1/vector_stores/[^/]+/files"), lambda body: check("ListVectorStoreFilesResponse", body)),
    ("GET", re.compile(r"/v1/vector_stores/[^/]+/files/[^/]+"), lambda body: check("VectorStoreFileObject", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+/files/[^/]+"), lambda body: check("VectorStoreFileObject", body)),
    ("DELETE", re.compile(r"/v1/vector_stores/[^/]+/files/[^/]+"), lambda body: check("DeleteVectorStoreFileResponse", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+/file_batches"), lambda body: check("VectorStoreFileBatchObject", body)),
    ("GET", re.compile(r"/v1/vector_stores/[^/]+/file_batches/[^/]+"), lambda body: check("VectorStoreFileBatchObject", body)),
    ("POST", re.compile(r"/v1/vector_stores/[^/]+/file_batches/[^/]+/cancel"), lambda body: check("VectorStoreFileBatchObject", body)),
    ("GET", re.compile(r"/v1/vector_stores/[^/]+/file_batches/[^/]+/files"), lambda body: check("ListVectorStoreFilesResponse", body)),
    ("GET", re.compile(r"/v1/models"), lambda body: check("ListModelsResponse", body)),
    ("GET", re.compile(r"/v1/models/.+"), lambda body: check("Model", body)),
    ("POST", re.compile(r"/v1/organization/projects"), lambda body: check("Project", body)),
    ("GET", re.compile(r"/v1/organization/projects"), lambda body: check("ProjectListResponse", body)),
    ("GET", re.compile(r"/v1/organization/projects/[^/]+"), lambda body: check("Project", body)),
    ("POST", re.compile(r"/v1/organization/projects/[^/]+"), lambda body: check("Project", body)),
    ("DELETE", re.compile(r"/v1/organization/projects/[^/]+"), lambda body: check("Project", body)),
    ("POST", re.compile(r"/v1/organization/projects/[^/]+/archive"), lambda body: check("Project", body)),
    ("POST", re.compile(r"/v1/organization/projects/[^/]+/api_keys"), lambda body: check("ProjectApiKey", body)),
    ("GET", re.compile(r"/v1/organization/projects/[^/]+/api_keys"), lambda body: check("ProjectApiKeyListResponse", body)),
    ("GET", re.compile(r"/v1/organization/projects/[^/]+/api_keys/[^/]+"), lambda body: check("ProjectApiKey", body)),
    ("DELETE", re.compile(r"/v1/organization/projects/[^/]+/api_keys/[^/]+"), lambda body: check("ProjectApiKeyDeleteResponse", body)),
]


def check_http(method: str, path: str, status: int, body: dict) -> None:
    """A JSON body the gateway answered `method path` with."""
    if status >= 400:
        check_error(body)
        return
    for route_method, pattern, validate in _ROUTES:
        if route_method == method and pattern.fullmatch(path):
            validate(body)
            return


class _EventChecker:
    """Validates the server-sent events of a stream as its bytes pass, numbered in order."""

    def __init__(self, response: httpx.Response) -> None:
        self.pending = b""
        self.sequence = int(response.request.url.params.get("starting_after", "-1")) + 1  # a resumed stream goes on after the cursor

    def feed(self, chunk: bytes) -> bytes:
        self.pending += chunk
        *blocks, self.pending = self.pending.split(b"\n\n")
        for block in blocks:
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    event = json.loads(line[6:])
                    check_event(event)
                    if "response" in event:
                        check_response(event["response"])
                    assert event["sequence_number"] == self.sequence, event
                    self.sequence += 1
        return chunk


class _CheckedEvents(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.inner, self.checker = response.stream, _EventChecker(response)

    def __iter__(self):
        for chunk in self.inner:
            yield self.checker.feed(chunk)

    def close(self) -> None:
        self.inner.close()


class _CheckedAsyncEvents(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self.inner, self.checker = response.stream, _EventChecker(response)

    async def __aiter__(self):
        async for chunk in self.inner:
            yield self.checker.feed(chunk)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _streams_events(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _check_json(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("application/json"):
        check_http(response.request.method, response.request.url.path, response.status_code, response.json())


def _validate(response: httpx.Response) -> None:
    if _streams_events(response):
        response.stream = _CheckedEvents(response)
        return
    response.read()
    _check_json(response)


async def _validate_async(response: httpx.Response) -> None:
    if _streams_events(response):
        response.stream = _CheckedAsyncEvents(response)
        return
    await response.aread()
    _check_json(response)


def validating_client(timeout: float = 30) -> httpx.Client:
    return httpx.Client(timeout=timeout, event_hooks={"response": [_validate]})


def validating_async_client(timeout: float = 30) -> httpx.AsyncClient:
    """The same, for `AsyncOpenAI` (the Agents SDK's client)."""
    return httpx.AsyncClient(timeout=timeout, event_hooks={"response": [_validate_async]})


# The hosted-tool items the gateway checks at run time (`rejoinder.protocol.hosted_schemas`), each
# with the schemas of OpenAI's file that describe it as input and as output.
HOSTED_ITEM_UNIONS = ("Item", "OutputItem")


def hosted_item_schemas(hosted_types: frozenset[str]) -> dict[str, Any]:
    """The part of OpenAI's file that describes `hosted_types`: `{"items": {type: [schema
    names]}, "schemas": {name: schema}}`, the schemas closed over their `$ref`s (what
    `src/rejoinder/protocol/hosted_items.json` holds; `test_conformance` keeps the two equal)."""
    schemas = _OPENAI_AS_PUBLISHED["components"]["schemas"]
    items: dict[str, list[str]] = {}
    for union in HOSTED_ITEM_UNIONS:
        for ref in schemas[union].get("oneOf", schemas[union].get("anyOf", [])):
            name = ref.get("$ref", "").rsplit("/", 1)[-1]
            kind = schemas.get(name, {}).get("properties", {}).get("type", {}).get("enum", [None])[0]
            if kind in hosted_types and name not in items.setdefault(kind, []):
                items[kind].append(name)
    needed, todo = {}, [name for names in items.values() for name in names]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed[name] = schemas[name]
            todo += re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schemas[name]))
    return {"items": {kind: sorted(names) for kind, names in sorted(items.items())}, "schemas": dict(sorted(needed.items()))}
