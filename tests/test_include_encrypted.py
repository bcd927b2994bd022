"""Encrypted reasoning is shown only when asked for: absent without
`include: ["reasoning.encrypted_content"]`, present with it, on create, stream and GET, on a
provider that produces reasoning state."""

from __future__ import annotations

from helpers import WEATHER, create, stream

INCLUDE = ["reasoning.encrypted_content"]


def _reasoning(items: list[dict]) -> dict:
    return next(item for item in items if item["type"] == "reasoning")


def test_create_and_get(multi):
    plain = create(multi, model="claude-thinking-tool", input="Weather?", tools=[WEATHER])
    assert "encrypted_content" not in _reasoning(plain["output"])
    shown = create(multi, model="claude-thinking-tool", input="Weather?", tools=[WEATHER], include=INCLUDE)
    assert _reasoning(shown["output"])["encrypted_content"].startswith("rj2.anthropic.")
    stored = multi.responses.with_raw_response.retrieve(plain["id"]).http_response.json()
    assert "encrypted_content" not in _reasoning(stored["output"])  # it is stored, but not shown
    stored = multi.responses.with_raw_response.retrieve(plain["id"], include=INCLUDE).http_response.json()
    assert _reasoning(stored["output"])["encrypted_content"].startswith("rj2.anthropic.")


def test_stream(multi):
    for include, shown in (([], False), (INCLUDE, True)):
        events = stream(multi, model="claude-thinking-tool", input="Weather?", tools=[WEATHER], include=include)
        items = [e["item"] for e in events if e["type"] in ("response.output_item.added", "response.output_item.done")]
        done = [item for item in items if item["type"] == "reasoning" and item.get("status") == "completed"]
        assert done and all(("encrypted_content" in item) is shown for item in done)
        assert ("encrypted_content" in _reasoning(events[-1]["response"]["output"])) is shown
