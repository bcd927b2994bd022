"""Anthropic Messages upstream: what it receives, and the Responses the client gets back."""

from __future__ import annotations

import json

import pytest
from conftest import ANTHROPIC_KEY
from fake_anthropic import REDACTED, SIGNATURE
from helpers import PNG, TEXT_EVENTS, TIME, WEATHER, create, stream, types

PDF = "data:application/pdf;base64,JVBERi0xLjQK"


def test_text_streams_like_any_other_provider(multi, fake_anthropic):
    events = stream(multi, model="claude-text", input="hi", instructions="Be brief.", temperature=0.2, max_output_tokens=100)
    assert types(events) == TEXT_EVENTS
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello, world!"
    assert final["usage"]["input_tokens"] == 25 and final["usage"]["output_tokens"] == 15
    sent = fake_anthropic.last()
    assert sent == {
        "model": "claude-text",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 100,
        "temperature": 0.2,
        "stream": True,
        "system": "Be brief.",
    }
    headers = fake_anthropic.headers[-1]
    assert headers["x-api-key"] == ANTHROPIC_KEY and headers["anthropic-version"] == "2023-06-01"


def test_non_streaming_matches_streaming(multi):
    body = create(multi, model="claude-tools-parallel", input="x", tools=[WEATHER, TIME])
    events = stream(multi, model="claude-tools-parallel", input="x", tools=[WEATHER, TIME])

    def shape(response):
        items = [{k: json.loads(v) if k == "arguments" else v for k, v in item.items() if k not in ("id", "call_id")} for item in response["output"]]
        return items, response["usage"], response["status"]

    assert shape(body) == shape(events[-1]["response"])


def test_parallel_tool_calls(multi, fake_anthropic):
    body = create(
        multi, model="claude-tools-parallel", input="Weather in Oslo and time in CET?", tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=True
    )
    message, weather, time_call = body["output"]
    assert message["content"][0]["text"] == "Checking both."
    assert (weather["call_id"], weather["name"], json.loads(weather["arguments"])) == ("toolu_01A", "get_weather", {"city": "Oslo"})
    assert (time_call["call_id"], time_call["name"], json.loads(time_call["arguments"])) == ("toolu_01B", "get_time", {"zone": "CET"})
    sent = fake_anthropic.last()
    assert sent["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER["parameters"]},
        {"name": "get_time", "input_schema": TIME["parameters"]},
    ]
    assert sent["tool_choice"] == {"type": "any"}


def test_tool_call_without_arguments_has_empty_object(multi):
    body = create(multi, model="claude-tool-no-args", input="time?", tools=[TIME])
    assert body["output"][0]["arguments"] == "{}"


@pytest.mark.parametrize(
    "choice, parallel, expected",
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "name": "get_time"}, False, {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_time"}]}, None, {"type": "auto"}),
    ],
)
def test_tool_choice_mapping(multi, fake_anthropic, choice, parallel, expected):
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    create(multi, model="claude-text", input="x", tools=[WEATHER, TIME], tool_choice=choice, **extra)
    sent = fake_anthropic.last()
    assert sent["tool_choice"] == expected
    if isinstance(choice, dict) and choice["type"] == "allowed_tools":
        assert [t["name"] for t in sent["tools"]] == ["get_time"]


def test_thinking_with_tool_use_round_trips_the_signature(multi, fake_anthropic):
    first = stream(
        multi,
        model="claude-thinking-tool",
        input="Weather in Paris?",
        tools=[WEATHER],
        reasoning={"effort": "medium", "summary": "auto"},
        max_output_tokens=16000,
    )
    assert "response.reasoning_summary_text.delta" in types(first)
    final = first[-1]["response"]
    reasoning, message, call = final["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == [{"type": "summary_text", "text": "The user wants the weather."}]
    assert "encrypted_content" not in reasoning  # not asked for
    assert message["content"][0]["text"] == "Let me check." and call["call_id"] == "toolu_01T"
    sent = fake_anthropic.last()
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 8192} and sent["max_tokens"] == 16000
    assert "temperature" not in sent and sent["tool_choice"] == {"type": "auto"}

    with_state = create(
        multi, model="claude-thinking-tool", input="Weather in Paris?", tools=[WEATHER], reasoning={"effort": "low"}, include=["reasoning.encrypted_content"]
    )
    assert with_state["output"][0]["encrypted_content"].startswith("rj2.anthropic.")

    create(
        multi,
        model="claude-text",
        previous_response_id=final["id"],
        input=[{"type": "function_call_output", "call_id": "toolu_01T", "output": '{"temperature_c": 18}'}],
        tools=[WEATHER],
        reasoning={"effort": "medium"},
    )
    sent = fake_anthropic.last()
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assistant = sent["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "The user wants the weather.", "signature": SIGNATURE}
    assert assistant[1] == {"type": "text", "text": "Let me check."}
    assert assistant[2] == {"type": "tool_use", "id": "toolu_01T", "name": "get_weather", "input": {"city": "Paris"}}
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_01T", "content": '{"temperature_c": 18}'}]
    assert sent["thinking"]["budget_tokens"] == 8192 and sent["max_tokens"] == 8192 + 8192


def test_redacted_thinking_is_kept_opaque_and_replayed(multi, fake_anthropic):
    first = create(multi, model="claude-redacted", input="hi", reasoning={"effort": "low"})
    reasoning, message = first["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == [] and message["content"][0]["text"] == "Done."
    create(multi, model="claude-text", input="again", previous_response_id=first["id"])
    assert fake_anthropic.last()["messages"][1]["content"][0] == {"type": "redacted_thinking", "data": REDACTED}


def test_system_roles_alternation_images_and_documents(multi, fake_anthropic):
    create(
        multi,
        model="claude-text",
        instructions="Top rules.",
        input=[
            {"role": "developer", "content": "Dev rules."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": PNG},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                ],
            },
            {"role": "user", "content": [{"type": "input_file", "filename": "a.pdf", "file_data": PDF}]},
            {"role": "assistant", "content": "Seen."},
            {"role": "system", "content": "Late rule."},
            {"role": "user", "content": "Summarise."},
        ],
    )
    sent = fake_anthropic.last()
    assert sent["system"] == "Top rules.\n\nDev rules.\n\nLate rule."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    first = sent["messages"][0]["content"]
    assert first[0] == {"type": "text", "text": "Look:"}
    assert first[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}}
    assert first[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert first[3] == {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}}


def test_structured_output_through_a_forced_tool(multi, fake_anthropic):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}}, "required": ["city", "temperature_c"]}
    events = stream(multi, model="claude-json", input="weather", text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    final = events[-1]["response"]
    [message] = final["output"]
    assert message["type"] == "message" and json.loads(message["content"][0]["text"]) == {"city": "Paris", "temperature_c": 21}
    assert final["status"] == "completed"
    sent = fake_anthropic.last()
    assert sent["tools"][-1]["name"] == "weather" and sent["tools"][-1]["input_schema"] == schema
    assert sent["tool_choice"] == {"type": "tool", "name": "weather"}


def test_cache_tokens_count_as_input(multi):
    body = create(multi, model="claude-cached", input="x")
    assert body["usage"]["input_tokens"] == 2105
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 2000, "cache_write_tokens": 100}
