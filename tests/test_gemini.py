"""Gemini upstream: what it receives, and the Responses the client gets back."""

from __future__ import annotations

import json

import pytest
from conftest import GEMINI_KEY
from fake_gemini import THOUGHT_SIGNATURE
from helpers import PNG, TEXT_EVENTS, TIME, WEATHER, create, stream, types


def test_text_stream_and_request_shape(multi, fake_gemini):
    events = stream(multi, model="gemini-text", input="hi", instructions="Be brief.", temperature=0.5, top_p=0.9, max_output_tokens=64)
    assert types(events) == TEXT_EVENTS
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello, world!"
    assert final["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 28,
        "output_tokens_details": {"reasoning_tokens": 19},
        "total_tokens": 40,
    }
    assert fake_gemini.paths[-1] == "/v1beta/models/gemini-text:streamGenerateContent?alt=sse"
    assert fake_gemini.headers[-1]["x-goog-api-key"] == GEMINI_KEY
    assert fake_gemini.last() == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 64},
    }


def test_non_streaming_uses_generate_content(multi, fake_gemini):
    body = create(multi, model="gemini-text", input="hi")
    assert body["output"][0]["content"][0]["text"] == "Hello, world!"
    assert fake_gemini.paths[-1] == "/v1beta/models/gemini-text:generateContent"


def test_thought_summaries_become_reasoning(multi, fake_gemini):
    events = stream(multi, model="gemini-thinking", input="decide", reasoning={"effort": "low", "summary": "auto"})
    assert "response.reasoning_summary_text.delta" in types(events)
    reasoning, message = events[-1]["response"]["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Weighing the options."}]
    assert message["content"][0]["text"] == "Answer."
    assert fake_gemini.last()["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}


def test_parallel_function_calls_and_signature_replay(multi, fake_gemini):
    first = create(
        multi,
        model="gemini-tools-parallel",
        input="Oslo weather and CET time?",
        tools=[WEATHER, TIME],
        tool_choice="required",
        include=["reasoning.encrypted_content"],
    )
    reasoning, weather, time_call = first["output"]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("rj2.gemini.")
    assert (weather["name"], json.loads(weather["arguments"])) == ("get_weather", {"city": "Oslo"})
    assert (time_call["name"], json.loads(time_call["arguments"])) == ("get_time", {"zone": "CET"})
    assert weather["call_id"] != time_call["call_id"]
    sent = fake_gemini.last()
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather for a city", "parametersJsonSchema": WEATHER["parameters"]},
                {"name": "get_time", "parametersJsonSchema": TIME["parameters"]},
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    create(
        multi,
        model="gemini-text",
        previous_response_id=first["id"],
        input=[
            {"type": "function_call_output", "call_id": weather["call_id"], "output": '{"temperature_c": 18}'},
            {"type": "function_call_output", "call_id": time_call["call_id"], "output": "12:00"},
        ],
        tools=[WEATHER, TIME],
    )
    contents = fake_gemini.last()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": THOUGHT_SIGNATURE},
        {"functionCall": {"name": "get_time", "args": {"zone": "CET"}}},
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temperature_c": 18}}},
        {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
    ]


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ({"type": "function", "name": "get_time"}, {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice_mapping(multi, fake_gemini, choice, expected):
    create(multi, model="gemini-text", input="x", tools=[WEATHER, TIME], tool_choice=choice)
    assert fake_gemini.last()["toolConfig"] == {"functionCallingConfig": expected}


def test_structured_output_is_native(multi, fake_gemini):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}}, "required": ["city", "temperature_c"]}
    body = create(multi, model="gemini-json", input="weather", text={"format": {"type": "json_schema", "name": "weather", "schema": schema}})
    assert json.loads(body["output"][0]["content"][0]["text"]) == {"city": "Paris", "temperature_c": 21}
    config = fake_gemini.last()["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"] == schema


def test_images_files_and_roles(multi, fake_gemini):
    create(
        multi,
        model="gemini-text",
        input=[
            {"role": "developer", "content": "Dev rule."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "See"},
                    {"type": "input_image", "image_url": PNG},
                    {"type": "input_image", "image_url": "https://example.com/cat.png"},
                ],
            },
            {"role": "user", "content": [{"type": "input_file", "file_url": "https://example.com/report.pdf"}]},
            {"role": "assistant", "content": "Seen."},
            {"role": "user", "content": "Summarise."},
        ],
    )
    sent = fake_gemini.last()
    assert sent["systemInstruction"] == {"parts": [{"text": "Dev rule."}]}
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][0]["parts"] == [
        {"text": "See"},
        {"inlineData": {"mimeType": "image/png", "data": PNG.split(",", 1)[1]}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/report.pdf"}},
    ]
