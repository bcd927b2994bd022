"""Arbitrary request bodies never crash the gateway: every answer is a response or an envelope.

Bodies start valid and get one field (or one item) swapped for arbitrary JSON, so the fuzz
reaches past the first check into translation, the providers and storage.
"""

from __future__ import annotations

import json

from helpers import assert_envelope, post_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
_name = st.text("abcdefgh_", min_size=1, max_size=8)
_item = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": st.text(max_size=20)}),
    st.fixed_dictionaries(
        {"role": st.just("user"), "content": st.lists(st.fixed_dictionaries({"type": st.just("input_text"), "text": st.text(max_size=10)}), max_size=2)}
    ),
    st.fixed_dictionaries({"type": st.just("function_call"), "call_id": _name, "name": _name, "arguments": st.sampled_from(["{}", '{"a": 1}'])}),
    st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": _name, "output": st.text(max_size=10)}),
    st.fixed_dictionaries({"type": st.just("reasoning"), "summary": st.just([])}),
)
_tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
_VALID = {
    "input": st.text(max_size=20) | st.lists(_item, min_size=1, max_size=4),
    "instructions": st.text(max_size=20),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_output_tokens": st.integers(16, 200),
    "tools": st.just([_tool]),
    "tool_choice": st.sampled_from(
        [
            "auto",
            "none",
            "required",
            {"type": "function", "name": "get_weather"},
            {"type": "mcp", "server_label": "docs"},  # no such server: a 400
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]},
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "custom"}, {"type": "mcp"}]},
        ]
    ),
    "parallel_tool_calls": st.booleans(),
    "text": st.sampled_from(
        [{"format": {"type": "text"}}, {"format": {"type": "json_object"}}, {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}]
    ),
    "reasoning": st.sampled_from([{"effort": "low"}, {"effort": "high", "summary": "auto"}, {}]),
    "metadata": st.dictionaries(_name, st.text(max_size=10), max_size=3),
    "store": st.booleans(),
    "stream": st.booleans(),
    "include": st.sampled_from([[], ["reasoning.encrypted_content"], ["message.output_text.logprobs"]]),
}


@st.composite
def bodies(draw):
    body = {
        "model": draw(
            st.sampled_from(["chat", "mock-reasoning", "mock-tools-parallel", "claude-thinking-tool", "gemini-tools-parallel", "oai-reasoning-tool"])
        ),
        "input": "hi",
    }
    for field in draw(st.lists(st.sampled_from(sorted(_VALID)), unique=True, max_size=6)):
        body[field] = draw(_VALID[field])
    if body.get("tool_choice") not in (None, "auto", "none"):
        body["tools"] = [_tool]
    corrupt = draw(st.sampled_from([None, None, "model", *sorted(_VALID)]))
    if corrupt is not None:
        body[corrupt] = draw(_json)
    return body


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies())
def test_any_body_gets_a_response_or_an_envelope(providers_gateway, body):
    status, _, payload = post_raw(providers_gateway, "POST", "/v1/responses", json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status in (200, 400, 404), payload
    if status != 200:
        assert_envelope(payload)
    elif body.get("stream") is True:
        assert payload["events"][-1]["type"] in ("response.completed", "response.incomplete")
    else:
        assert payload["object"] == "response" and payload["status"] in ("completed", "incomplete")
