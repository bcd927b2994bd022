"""The official SDK's own helpers work the same on every provider."""

from __future__ import annotations

import pytest
from fake_anthropic import SIGNATURE
from helpers import WEATHER
from providers import models
from pydantic import BaseModel


class Weather(BaseModel):
    city: str
    temperature_c: float


@pytest.mark.parametrize("model", models("json"))
def test_responses_parse_with_a_pydantic_model(multi, model):
    parsed = multi.responses.parse(model=model, input="Weather in Paris?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temperature_c=21)


@pytest.mark.parametrize("model", models("json"))
def test_responses_stream_with_a_pydantic_model(multi, model):
    with multi.responses.stream(model=model, input="Weather in Paris?", text_format=Weather) as events:
        final = events.get_final_response()
    assert final.output_parsed == Weather(city="Paris", temperature_c=21)


def test_stateless_round_trip_with_encrypted_reasoning(multi, fake_anthropic):
    """With `store: false` the client carries the turn itself: the output items it sends back,
    encrypted reasoning included, give the provider its thinking signature again."""
    first = multi.responses.create(
        model="claude-thinking-tool",
        input="Weather in Paris?",
        tools=[WEATHER],
        reasoning={"effort": "low"},
        store=False,
        include=["reasoning.encrypted_content"],
    )
    reasoning, message, call = first.output
    assert reasoning.encrypted_content.startswith("rj2.anthropic.")
    replay = [{"role": "user", "content": "Weather in Paris?"}, *[item.model_dump(exclude_none=True) for item in first.output]]
    replay.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C"})
    second = multi.responses.create(model="claude-text", input=replay, tools=[WEATHER], reasoning={"effort": "low"}, store=False)
    assert second.status == "completed"
    assistant = fake_anthropic.last()["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "The user wants the weather.", "signature": SIGNATURE}
    assert assistant[2]["type"] == "tool_use" and assistant[2]["id"] == call.call_id


@pytest.mark.parametrize("model", sorted(set(models("reasoning") + models("tools"))))
def test_sdk_output_items_dumped_with_nulls_are_valid_input(multi, model):
    """Clients replay `response.output` as they got it from the SDK, `None` fields included."""
    first = multi.responses.create(model=model, input="Weather?", tools=[WEATHER], store=False)
    replay = [{"role": "user", "content": "Weather?"}, *[item.model_dump() for item in first.output]]
    replay += [{"type": "function_call_output", "call_id": item.call_id, "output": "18C"} for item in first.output if item.type == "function_call"]
    assert multi.responses.create(model="chat", input=replay, store=False).status == "completed"
