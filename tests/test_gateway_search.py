"""Web search run by the gateway for a provider that cannot search (Chat Completions here), against
a fake SearXNG: the model's calls of the offered `web_search` function become `web_search_call`
items with OpenAI's events, the results go back to the model in the same response, and the
response has one terminal event and the usage of every turn."""

from __future__ import annotations

import json

import pytest
from conftest import chat_models, sdk
from fake_chat import USAGE
from fake_searxng import RESULTS, FakeSearXNG
from gateway import Gateway
from helpers import create, stream, types


@pytest.fixture(scope="module")
def searxng():
    fake = FakeSearXNG()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def searching(fake_chat, searxng, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("search")
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "web_search": {"backend": "searxng", "url": searxng.url}}
    gw = Gateway(config, workdir).start()
    yield sdk(gw)
    gw.stop()


def test_the_gateway_searches_and_the_model_answers_in_one_response(searching, fake_chat, searxng):
    before = len(fake_chat.requests)
    events = stream(searching, model="mock-searcher", input="Weather in Oslo?", tools=[{"type": "web_search"}], include=["web_search_call.action.sources"])
    first, second = fake_chat.requests[before:]
    assert [tool["function"]["name"] for tool in first["tools"]] == ["web_search"]
    results = next(message for message in second["messages"] if message["role"] == "tool")
    assert results["tool_call_id"] == "call_ws1" and RESULTS[0]["url"] in results["content"] and RESULTS[0]["content"] in results["content"]
    assert searxng.queries[-1] == "weather in Oslo"
    names = types(events)
    assert [name for name in names if name.startswith("response.web_search_call.")] == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    assert "response.function_call_arguments.delta" not in names  # the client never sees the gateway's own function
    response = events[-1]["response"]
    call, answer = response["output"]
    assert call["type"] == "web_search_call" and call["status"] == "completed" and call["action"]["query"] == "weather in Oslo"
    assert [source["url"] for source in call["action"]["sources"]] == [r["url"] for r in RESULTS]
    assert answer["content"][0]["text"] == "Oslo: 18C, clear."
    assert response["usage"]["input_tokens"] == 2 * USAGE["prompt_tokens"] and response["usage"]["output_tokens"] == 2 * USAGE["completion_tokens"]
    assert response["tools"] == [{"type": "web_search"}]  # the echo is what the client sent


def test_a_stored_search_and_the_turn_after_it(searching, fake_chat):
    response = create(searching, model="mock-searcher", input="Weather in Oslo?", tools=[{"type": "web_search"}])
    assert [item["type"] for item in response["output"]] == ["web_search_call", "message"] and "sources" not in response["output"][0]["action"]
    stored = searching.responses.retrieve(response["id"])
    assert stored.output[0].type == "web_search_call" and stored.output_text == "Oslo: 18C, clear."
    create(searching, model="mock-text", input="Thanks", previous_response_id=response["id"])
    history = fake_chat.last()["messages"]
    assert not any(message.get("tool_calls") or message["role"] == "tool" for message in history)  # no dangling call
    assert [m["content"] for m in history if m["role"] == "assistant"] == ["Oslo: 18C, clear."]


def test_a_forced_search_is_made_once(searching, fake_chat):
    before = len(fake_chat.requests)
    tool = {"type": "web_search_preview"}
    response = create(searching, model="mock-searcher", input="Weather in Oslo?", tools=[tool], tool_choice=tool)
    assert [item["type"] for item in response["output"]] == ["web_search_call", "message"] and response["tool_choice"] == tool
    first, second = fake_chat.requests[before:]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "web_search"}} and second["tool_choice"] == "auto"


def test_a_failed_search_is_reported_and_the_model_goes_on(searching, fake_chat):
    response = create(searching, model="mock-searcher", input="Make the search fail", tools=[{"type": "web_search"}])
    assert response["status"] == "completed" and response["output"][0]["status"] == "failed"
    told = next(message for message in fake_chat.last()["messages"] if message["role"] == "tool")
    assert told["content"] == "Error: The search failed."
    assert json.dumps(response).count("web_search_call") == 1
