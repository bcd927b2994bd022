"""A native Responses upstream: the gateway forwards, yet keeps state, ids and events its own."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import OPENAI_KEY
from fake_responses import ENCRYPTED
from helpers import TEXT_EVENTS, create, stream, types

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def test_text_is_forwarded_statelessly(multi, fake_responses):
    events = stream(multi, model="oai-text", input="hi", instructions="Be brief.", max_output_tokens=50, metadata={"k": "v"})
    assert types(events) == TEXT_EVENTS
    final = events[-1]["response"]
    assert final["id"].startswith("resp_") and final["id"] != "resp_upstream1"
    assert final["output"][0]["id"] != "msg_up0"
    assert final["output"][0]["content"][0]["text"] == "Hello, world!"
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 8 and final["usage"]["output_tokens_details"]["reasoning_tokens"] == 20
    assert final["metadata"] == {"k": "v"}
    sent = fake_responses.last()
    assert sent == {
        "model": "oai-text",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "stream": True,
        "instructions": "Be brief.",
        "max_output_tokens": 50,
        "truncation": "disabled",
    }
    assert fake_responses.headers[-1]["Authorization"] == f"Bearer {OPENAI_KEY}"


def test_reasoning_state_and_tool_calls_round_trip(multi, fake_responses):
    first = stream(multi, model="oai-reasoning-tool", input="Oslo weather?", tools=[WEATHER], reasoning={"effort": "high", "summary": "auto"})
    assert "response.reasoning_summary_text.delta" in types(first) and "response.function_call_arguments.delta" in types(first)
    final = first[-1]["response"]
    reasoning, call = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Need the weather."}] and "encrypted_content" not in reasoning
    assert (call["call_id"], call["name"], call["arguments"]) == ("call_up1", "get_weather", '{"city": "Oslo"}')
    sent = fake_responses.last()
    assert sent["reasoning"] == {"effort": "high", "summary": "auto"} and sent["tools"] == [WEATHER | {"description": None}] and sent["tool_choice"] == "auto"

    create(multi, model="oai-text", previous_response_id=final["id"], input=[{"type": "function_call_output", "call_id": "call_up1", "output": "18C"}])
    assert fake_responses.last()["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oslo weather?"}]},
        {"type": "reasoning", "id": "rs_up1", "summary": [{"type": "summary_text", "text": "Need the weather."}], "encrypted_content": ENCRYPTED},
        {"type": "function_call", "call_id": "call_up1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_up1", "output": "18C"},
    ]
    assert "previous_response_id" not in fake_responses.last()


def test_non_streaming_keeps_the_sealed_state(multi):
    body = create(multi, model="oai-reasoning-tool", input="x", tools=[WEATHER], include=["reasoning.encrypted_content"])
    assert body["output"][0]["encrypted_content"].startswith("rj2.openai.") and ENCRYPTED not in body["output"][0]["encrypted_content"]
    assert body["output"][1]["arguments"] == '{"city": "Oslo"}'


def test_openai_only_knobs_reach_openai(multi, fake_responses):
    create(
        multi, model="oai-text", input="x", service_tier="flex", prompt_cache_key="k", text={"verbosity": "low"}, extra_body={"prompt_cache_retention": "24h"}
    )
    sent = fake_responses.last()
    assert (sent["service_tier"], sent["prompt_cache_key"], sent["prompt_cache_retention"], sent["text"]) == (
        "flex",
        "k",
        "24h",
        {"format": {"type": "text"}, "verbosity": "low"},
    )


WEB_SEARCH = {"type": "web_search_preview", "search_context_size": "low"}


@pytest.mark.parametrize("streaming", [True, False])
def test_hosted_tools_run_upstream_and_their_items_are_kept(multi, fake_responses, streaming):
    params = {"model": "oai-web-search", "input": "Weather in Oslo?", "tools": [WEB_SEARCH], "tool_choice": {"type": "web_search_preview"}}
    if streaming:
        events = stream(multi, **params)
        assert types(events)[2:7] == [
            "response.output_item.added",
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_item.done",
        ]
        assert events[2]["item"]["status"] == "in_progress" and all(e["output_index"] == 0 and e["item_id"] == "ws_up1" for e in events[3:6])
        [cited] = [e for e in events if e["type"] == "response.output_text.annotation.added"]
        assert (cited["output_index"], cited["content_index"], cited["annotation_index"], cited["annotation"]["type"]) == (1, 0, 0, "url_citation")
        final = events[-1]["response"]
    else:
        final = create(multi, **params)
    search, message = final["output"]
    assert search == {"id": "ws_up1", "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "weather in Oslo"}}
    assert message["content"][0]["text"] == "Oslo: 18C, clear." and message["content"][0]["annotations"][0]["url"] == "https://weather.example/oslo"
    assert final["tools"] == [WEB_SEARCH] and final["tool_choice"] == {"type": "web_search_preview"}
    sent = fake_responses.last()
    assert sent["tools"] == [WEB_SEARCH] and sent["tool_choice"] == {"type": "web_search_preview"}

    create(multi, model="oai-text", previous_response_id=final["id"], input="And tomorrow?")
    replayed = fake_responses.last()["input"]
    assert replayed[1] == search and replayed[2]["type"] == "message"


INTERPRETER = {"type": "code_interpreter", "container": {"type": "auto"}}  # a hosted tool only OpenAI runs


def test_hosted_tools_are_refused_or_dropped_where_nothing_runs_them(multi, fake_chat, fake_anthropic, fake_gemini, fake_responses):
    """By default web search is left out of the view of a model whose provider cannot search
    (with a warning: agents offer it always) and every other hosted tool is refused; a forced
    hosted tool is always refused. Anthropic and Gemini search on their side (see
    tests/test_web_search.py)."""
    for model, fake in (("chat", fake_chat), ("claude-text", fake_anthropic), ("gemini-text", fake_gemini)):
        with pytest.raises(openai.BadRequestError) as error:
            multi.responses.create(model=model, input="x", tools=[WEATHER, INTERPRETER])
        assert error.value.body["param"] == "tools[1].type"
    assert "google_search" in json.dumps(create(multi, model="gemini-text", input="x", tools=[WEATHER, WEB_SEARCH]) and fake_gemini.last())
    assert "web_search_20250305" in json.dumps(create(multi, model="claude-text", input="x", tools=[WEATHER, WEB_SEARCH]) and fake_anthropic.last())
    for model, fake in (("chat", fake_chat),):
        raw = multi.responses.with_raw_response.create(model=model, input="x", tools=[WEATHER, WEB_SEARCH])
        assert raw.headers["x-rejoinder-warning"] == "tools[1] (web_search_preview) was left out: this model's provider cannot run it"
        assert "web_search" not in json.dumps(fake.last()) and "get_weather" in json.dumps(fake.last())
        assert raw.parse().tools[1].type == "web_search_preview"  # the echo is what the client sent
        with pytest.raises(openai.BadRequestError):
            multi.responses.create(model=model, input="x", tools=[WEB_SEARCH], tool_choice={"type": "web_search_preview"})
    first = create(multi, model="oai-web-search", input="Weather in Oslo?", tools=[WEB_SEARCH])
    create(multi, model="chat", previous_response_id=first["id"], input="Thanks")  # the search record stays behind


def test_hosted_items_sent_by_the_client_pass_through(multi, fake_responses):
    record = {"type": "web_search_call", "id": "ws_client", "status": "completed", "action": {"type": "search", "query": "q"}}
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    body = create(multi, model="passthrough-text", input=[{"role": "user", "content": "hi"}, record, approval])
    assert fake_responses.last()["input"][1:] == [record, approval]  # no gateway id leaks upstream (nor the listed form's request_id)
    listed = [item.model_dump(exclude_none=True) for item in multi.responses.input_items.list(body["id"], order="asc").data]
    assert (
        listed[1]["id"] == "ws_client"
        and listed[2]["type"] == "mcp_approval_response"
        and listed[2]["id"].startswith("rjitem_")
        and listed[2]["request_id"] == "mcpr_1"
    )
