"""Every provider (`providers.PROVIDERS`) through the same cases: text, streaming, tools,
reasoning, usage, stop reasons and errors, against its fake upstream speaking its documented wire
format. A new provider's row is held to all of them."""

from __future__ import annotations

import json

import openai
import pytest
from helpers import TIME, WEATHER, assert_upstream_error, create, stream, types
from providers import PROVIDERS, Provider

BY_NAME = {provider.name: provider for provider in PROVIDERS}


def _each(capability: str) -> list:
    return [pytest.param(p, id=p.name) for p in PROVIDERS if capability in p.scenarios]


def _final(events: list[dict]) -> dict:
    return events[-1]["response"]


def _message_events(events: list[dict]) -> list[str]:
    """The event types, each run of deltas counted once (providers split text differently)."""
    kinds = types(events)
    return [kind for i, kind in enumerate(kinds) if not (kind.endswith(".delta") and i and kinds[i - 1] == kind)]


@pytest.mark.parametrize("provider", _each("text"))
def test_text_streamed_and_not_agree_and_read_back(multi, provider: Provider):
    model = provider.model("text")
    whole = create(multi, model=model, input="Say hello")
    events = stream(multi, model=model, input="Say hello")
    streamed = _final(events)
    assert whole["status"] == streamed["status"] == "completed"
    assert [item["type"] for item in whole["output"]] == [item["type"] for item in streamed["output"]] == ["message"]
    text = whole["output"][0]["content"][0]["text"]
    assert text and text == streamed["output"][0]["content"][0]["text"]
    assert "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta") == text
    assert _message_events(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert multi.responses.with_raw_response.retrieve(streamed["id"]).http_response.json() == streamed


@pytest.mark.parametrize("provider", _each("text"))
def test_usage_is_counted_and_adds_up(multi, provider: Provider):
    for body in (create(multi, model=provider.model("text"), input="Say hello"), _final(stream(multi, model=provider.model("text"), input="Say hello"))):
        usage = body["usage"]
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert 0 <= usage["input_tokens_details"]["cached_tokens"] <= usage["input_tokens"]


@pytest.mark.parametrize("provider", _each("tools"))
def test_tool_calls_become_function_call_items(multi, provider: Provider):
    model = provider.model("tools")
    whole = create(multi, model=model, input="Weather and time in Paris?", tools=[WEATHER, TIME])
    events = stream(multi, model=model, input="Weather and time in Paris?", tools=[WEATHER, TIME])
    for body in (whole, _final(events)):
        calls = [item for item in body["output"] if item["type"] == "function_call"]
        assert calls and all(call["status"] == "completed" and call["name"] in ("get_weather", "get_time") and call["call_id"] for call in calls)
        assert all(isinstance(json.loads(call["arguments"]), dict) for call in calls)
    done = [event for event in events if event["type"] == "response.function_call_arguments.done"]
    assert [event["arguments"] for event in done] == [item["arguments"] for item in _final(events)["output"] if item["type"] == "function_call"]


@pytest.mark.parametrize("provider", _each("reasoning"))
def test_reasoning_becomes_a_reasoning_item(multi, provider: Provider):
    events = stream(multi, model=provider.model("reasoning"), input="Think, then answer", tools=[WEATHER], reasoning={"effort": "low"})
    reasoning = [item for item in _final(events)["output"] if item["type"] == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0]["status"] == "completed"
    assert "encrypted_content" not in reasoning[0]  # only when the client asks for it


@pytest.mark.parametrize("provider", _each("length"))
def test_running_out_of_tokens_is_incomplete(multi, provider: Provider):
    body = create(multi, model=provider.model("length"), input="x")
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"} and body["completed_at"] is None


@pytest.mark.parametrize("provider", _each("content_filter"))
def test_a_filtered_answer_is_incomplete(multi, provider: Provider):
    body = create(multi, model=provider.model("content_filter"), input="x")
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "content_filter"}


@pytest.mark.parametrize(("provider", "error"), [pytest.param(p, e, id=f"{p.name}-{e.scenario}") for p in PROVIDERS for e in p.errors])
def test_errors_before_the_stream_are_plain_errors(providers_gateway, provider: Provider, error):
    assert_upstream_error(providers_gateway, provider.prefix + error.scenario, error.status, error.code, provider.key, error.retry_after)


@pytest.mark.parametrize(("provider", "scenario"), [pytest.param(p, s, id=f"{p.name}-{s}") for p in PROVIDERS for s in p.midstream])
def test_errors_during_the_stream_fail_the_response(multi, provider: Provider, scenario: str):
    events = stream(multi, model=provider.prefix + scenario, input="x")
    assert types(events)[-2:] == ["error", "response.failed"]
    failed = _final(events)
    assert provider.midstream[scenario] in failed["error"]["message"] and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["content"][0]["text"].startswith("Partial") and failed["output"][0]["status"] == "incomplete"
    assert multi.responses.retrieve(failed["id"]).status == "failed"


def test_sdk_sees_overload_as_503(multi):
    with pytest.raises(openai.InternalServerError) as error:
        multi.responses.create(model=BY_NAME["anthropic"].prefix + "error-529", input="x")
    assert error.value.status_code == 503


def test_the_hosted_item_schemas_the_gateway_ships_are_openais():
    """`protocol/hosted_items.json` is the part of the vendored spec that describes hosted items."""
    from pathlib import Path

    from spec import hosted_item_schemas

    from rejoinder.protocol import hosted_schemas
    from rejoinder.protocol.items import HOSTED_ITEM_TYPES

    shipped = json.loads(Path(hosted_schemas.__file__).with_name("hosted_items.json").read_text())
    assert shipped == hosted_item_schemas(HOSTED_ITEM_TYPES)
    assert set(shipped["items"]) == HOSTED_ITEM_TYPES
