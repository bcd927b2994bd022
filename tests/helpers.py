"""Calls through the official SDK that also validate every byte against the spec."""

from __future__ import annotations

import json
from typing import Any

from openai import OpenAI

from spec import check_event, check_response


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
