"""POST /v1/responses over a Chat Completions upstream: the Response object and its stream."""

from __future__ import annotations

import json
import urllib.request

from helpers import TEXT_EVENTS, create, stream, types


def test_text_response_is_complete_and_echoes_the_request(client, fake_chat):
    body = create(
        client,
        model="chat",
        input="Say hello",
        instructions="Be brief.",
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=50,
        metadata={"team": "docs"},
        safety_identifier="user-42",
        prompt_cache_key="cache-1",
    )
    assert body["object"] == "response" and body["id"].startswith("resp_")
    assert body["status"] == "completed" and body["completed_at"] >= body["created_at"]
    assert body["model"] == "chat"
    assert body["instructions"] == "Be brief."
    assert (body["temperature"], body["top_p"], body["max_output_tokens"]) == (0.3, 0.9, 50)
    assert body["metadata"] == {"team": "docs"}
    assert body["safety_identifier"] == "user-42" and body["prompt_cache_key"] == "cache-1"
    assert body["store"] is True and body["error"] is None and body["incomplete_details"] is None
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["id"].startswith("msg_")
    assert message["content"] == [{"type": "output_text", "text": "Hello, world!", "annotations": [], "logprobs": []}]
    assert body["usage"] == {
        "input_tokens": 19,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 29,
    }
    sent = fake_chat.last()
    assert sent["model"] == "text" and "stream" not in sent
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.3, 0.9, 50)
    assert sent["safety_identifier"] == "user-42" and sent["prompt_cache_key"] == "cache-1"
    assert "metadata" not in sent and "store" not in sent


def test_sdk_parses_output_text(client):
    response = client.responses.create(model="chat", input="hi")
    assert response.output_text == "Hello, world!"
    assert response.usage.total_tokens == 29


def test_stream_has_the_official_event_sequence(client, fake_chat):
    events = stream(client, model="chat", input="hi")
    assert types(events) == TEXT_EVENTS
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    item_id = events[2]["item"]["id"]
    assert events[2]["item"]["status"] == "in_progress" and events[2]["item"]["content"] == []
    for event in events[3:9]:
        assert event["item_id"] == item_id and event["output_index"] == 0
    assert events[9]["item"]["id"] == item_id and events[9]["item"]["status"] == "completed"
    assert [e["delta"] for e in events[4:7]] == ["Hello", ", world", "!"]
    assert events[7]["text"] == "Hello, world!"
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "Hello, world!"
    assert final["usage"]["input_tokens"] == 19
    sent = fake_chat.last()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_sdk_stream_helper_final_response_equals_get(client):
    with client.responses.stream(model="chat", input="hi") as events:
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        final = events.get_final_response()
    assert "".join(deltas) == "Hello, world!"
    stored = client.responses.retrieve(final.id)
    final_dump = final.model_dump()
    for item in final_dump["output"]:
        for part in item.get("content") or []:
            assert part.pop("parsed") is None  # the stream helper's own addition for text.format
    assert stored.model_dump() == final_dump


def test_streaming_and_non_streaming_agree(client):
    body = create(client, model="mock-tools-parallel", input="weather and time?", tools=_TOOLS)
    events = stream(client, model="mock-tools-parallel", input="weather and time?", tools=_TOOLS)
    final = events[-1]["response"]

    def shape(response):
        return [{k: v for k, v in item.items() if k != "id"} for item in response["output"]], response["usage"], response["status"]

    assert shape(body) == shape(final)


_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]


def test_parallel_tool_calls_interleaved_stay_apart(client, fake_chat):
    events = stream(client, model="mock-tools-parallel", input="weather and time?", tools=_TOOLS, parallel_tool_calls=True)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [a["item"]["type"] for a in added] == ["function_call", "function_call"]
    assert [a["output_index"] for a in added] == [0, 1]
    ids = {a["output_index"]: a["item"]["id"] for a in added}
    for event in events:
        if event["type"] == "response.function_call_arguments.delta":
            assert event["item_id"] == ids[event["output_index"]]
    done = {e["output_index"]: e for e in events if e["type"] == "response.function_call_arguments.done"}
    assert done[0]["arguments"] == '{"city": "Oslo"}' and done[0]["name"] == "get_weather"
    assert done[1]["arguments"] == '{"zone": "CET"}' and done[1]["name"] == "get_time"
    final = events[-1]["response"]
    calls = final["output"]
    assert [(c["call_id"], c["name"], c["status"]) for c in calls] == [("call_p1", "get_weather", "completed"), ("call_p2", "get_time", "completed")]
    assert all(c["id"].startswith("fc_") for c in calls)
    sent = fake_chat.last()
    assert sent["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather for a city", "parameters": _TOOLS[0]["parameters"], "strict": True},
    }
    assert sent["tools"][1]["function"]["name"] == "get_time" and "strict" not in sent["tools"][1]["function"]
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True


def test_calls_sharing_an_index_are_told_apart_by_id(client):
    events = stream(client, model="mock-tools-same-index", input="x", tools=_TOOLS)
    calls = events[-1]["response"]["output"]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_m1", "get_weather", '{"city": "Oslo"}'),
        ("call_m2", "get_time", '{"zone": "CET"}'),
    ]


def test_text_then_tool_call_become_two_items(client):
    body = create(client, model="mock-text-then-tool", input="Rome?", tools=_TOOLS)
    assert [item["type"] for item in body["output"]] == ["message", "function_call"]
    assert body["output"][0]["content"][0]["text"] == "Let me check."
    assert body["output"][1]["arguments"] == '{"city": "Rome"}'


def test_tool_call_arguments_split_across_chunks(client):
    events = stream(client, model="mock-tool-single", input="Paris?", tools=_TOOLS)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ['{"ci', 'ty": "Par', 'is"}']
    assert events[-1]["response"]["output"][0]["arguments"] == '{"city": "Paris"}'


def test_reasoning_content_becomes_a_reasoning_item(client):
    events = stream(client, model="mock-reasoning", input="hi", reasoning={"effort": "low"})
    assert types(events)[2:9] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    final = events[-1]["response"]
    reasoning, message = final["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "The user greets me. I greet back."}]
    assert message["content"][0]["text"] == "Hi there!"
    assert final["reasoning"] == {"effort": "low", "summary": None}
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 3


def test_reasoning_field_spelling_is_understood(client, fake_chat):
    body = create(client, model="mock-reasoning-field", input="hi", reasoning={"effort": "high"})
    assert body["output"][0]["content"][0]["text"] == "Thinking hard."
    assert body["output"][1]["content"][0]["text"] == "Done."
    assert fake_chat.last()["reasoning_effort"] == "high"


def test_refusal_becomes_a_refusal_part(client):
    events = stream(client, model="mock-refusal", input="something bad")
    assert "response.refusal.delta" in types(events) and "response.refusal.done" in types(events)
    [message] = events[-1]["response"]["output"]
    assert message["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]
    body = create(client, model="mock-refusal", input="something bad")
    assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


def test_length_finish_is_incomplete(client):
    events = stream(client, model="mock-length", input="tell a story", max_output_tokens=16)
    assert types(events)[-1] == "response.incomplete"
    final = events[-1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    body = create(client, model="mock-length", input="tell a story", max_output_tokens=16)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_logprobs_are_returned_when_included(client, fake_chat):
    events = stream(client, model="mock-logprobs", input="ok?", include=["message.output_text.logprobs"], top_logprobs=2)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert deltas[0]["logprobs"][0]["token"] == "Yes"
    part = events[-1]["response"]["output"][0]["content"][0]
    assert [lp["token"] for lp in part["logprobs"]] == ["Yes", "."]
    sent = fake_chat.last()
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    plain = create(client, model="mock-logprobs", input="ok?")
    assert plain["output"][0]["content"][0]["logprobs"] == []
    assert "logprobs" not in fake_chat.last()


def test_structured_output_maps_to_response_format(client, fake_chat):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
        "required": ["city", "temperature_c"],
        "additionalProperties": False,
    }
    body = create(client, model="mock-json", input="weather", text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}})
    assert json.loads(body["output"][0]["content"][0]["text"]) == {"city": "Paris", "temperature_c": 21}
    assert body["text"]["format"] == {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}
    assert fake_chat.last()["response_format"] == {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}}
    create(client, model="mock-json", input="weather as JSON", text={"format": {"type": "json_object"}})
    assert fake_chat.last()["response_format"] == {"type": "json_object"}


def test_sse_wire_format(gateway):
    request = urllib.request.Request(gateway.url + "/v1/responses", data=b'{"model": "chat", "input": "hi", "stream": true}', method="POST")
    with urllib.request.urlopen(request) as response:
        raw = response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""
    assert frames[0].startswith(b"event: response.created\ndata: {")
    assert b"[DONE]" not in raw
