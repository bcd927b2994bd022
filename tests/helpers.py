"""Calls through the official SDK that also validate every byte against the spec."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from openai import OpenAI
from spec import check_event, check_http, check_response


def create(client: OpenAI, **params: Any) -> dict[str, Any]:
    """A non-streaming `responses.create`, validated; returns the JSON the gateway sent."""
    raw = client.responses.with_raw_response.create(**params)
    body = raw.http_response.json()
    check_response(body)
    return body


def stream(client: OpenAI, **params: Any) -> list[dict[str, Any]]:
    """A streaming `responses.create`: every event validated, numbered 0…n-1, one terminal."""
    events = []
    with client.responses.with_streaming_response.create(stream=True, **params) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in raw.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                event = json.loads(line[len("data: ") :])
                assert event["type"] == name, f"event: line {name} disagrees with data {event['type']}"
                events.append(event)
    for event in events:
        check_event(event)
        if event["type"] in ("response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"):
            check_response(event["response"])
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    terminal = [e for e in events if e["type"] in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1 and events[-1] is terminal[0]
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


# Inputs the provider tests share: a 1x1 PNG as a data URL and two function tools.
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}

# The events of a one-message text answer streamed in three pieces, as every provider sends it.
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def post_raw(gateway: Any, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    """One request without the SDK: status, headers and the decoded JSON body (for a stream,
    `{"events": [...]}`)."""
    request = urllib.request.Request(gateway.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            if response.headers["Content-Type"].startswith("text/event-stream"):
                events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith(b"data: ")]
                for event in events:
                    check_event(event)
                    if "response" in event:
                        check_response(event["response"])
                return response.status, dict(response.headers), {"events": events}
            status, headers, payload = response.status, dict(response.headers), json.loads(raw)
    except urllib.error.HTTPError as error:
        status, headers, payload = error.code, dict(error.headers), json.loads(error.read())
    check_http(method, urllib.parse.urlsplit(path).path, status, payload)
    return status, headers, payload


def wait_until(condition, seconds: float = 10) -> bool:
    """Whether `condition()` came true within `seconds` (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def raw_stream(gateway: Any, response_id: str, starting_after: int | None = None, timeout: float = 30) -> bytes:
    """The bytes of `GET /v1/responses/{id}?stream=true[&starting_after=N]`, to the end."""
    query = "stream=true" + (f"&starting_after={starting_after}" if starting_after is not None else "")
    with urllib.request.urlopen(f"{gateway.url}/v1/responses/{response_id}?{query}", timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return response.read()


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The events of raw SSE bytes, each checked against the spec and against its `event:` line;
    their numbers must follow on from one another."""
    events = []
    for block in raw.split(b"\n\n")[:-1]:
        name, data = block.split(b"\n")
        event = json.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + event["type"].encode()
        check_event(event)
        if "response" in event:
            check_response(event["response"])
        events.append(event)
    numbers = [event["sequence_number"] for event in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True, numbers
    return events


def assert_envelope(body: dict, param: Any = ..., code: Any = ...) -> None:
    """`body` is OpenAI's error envelope, with `param` and `code` when given."""
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if param is not ...:
        assert body["error"]["param"] == param
    if code is not ...:
        assert body["error"]["code"] == code


def assert_upstream_error(gateway: Any, model: str, status: int, code: str, secret: str, retry_after: str | None = None) -> None:
    """A streaming request whose upstream fails at once gets a plain JSON error, secret-free."""
    got, headers, payload = post_raw(gateway, "POST", "/v1/responses", json.dumps({"model": model, "input": "x", "stream": True}).encode())
    assert got == status, payload
    assert_envelope(payload, code=code)
    assert secret not in json.dumps(payload)
    if retry_after is not None:
        assert headers["Retry-After"] == retry_after
