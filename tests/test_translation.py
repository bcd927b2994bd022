"""What the Chat Completions upstream receives for each shape of Responses input."""

from __future__ import annotations

import openai
import pytest
from helpers import PNG, TIME, WEATHER, create


def test_items_translate_to_chat_messages(client, fake_chat):
    create(
        client,
        model="chat",
        instructions="Answer in French.",
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need two calls."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking both.", "annotations": []}]},
            {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "24C"}]},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
    )
    assert fake_chat.last()["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24C"},
        {"role": "user", "content": "Thanks"},
    ]


def test_function_calls_without_text_get_their_own_assistant_message(client, fake_chat):
    create(
        client,
        model="chat",
        input=[
            {"role": "user", "content": "Paris?"},
            {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        ],
    )
    assert fake_chat.last()["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
    }


def test_images_and_files_become_content_parts(client, fake_chat):
    create(
        client,
        model="chat",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these?"},
                    {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                    {"type": "input_image", "image_url": PNG},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"},
                ],
            }
        ],
    )
    assert fake_chat.last()["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "auto"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "a.pdf"}},
    ]


def test_messages_is_accepted_instead_of_input(client, fake_chat):
    """`input` is optional in the SDK; `messages` travels as an extra body field."""
    create(client, model="chat", extra_body={"messages": [{"role": "user", "content": "hi"}]})
    assert fake_chat.last()["messages"] == [{"role": "user", "content": "hi"}]


def test_tool_choice_shapes(client, fake_chat):
    for choice, sent in [
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "get_time"}, {"type": "function", "function": {"name": "get_time"}}),
    ]:
        body = create(client, model="chat", input="x", tools=[WEATHER, TIME], tool_choice=choice)
        assert body["tool_choice"] == choice
        assert fake_chat.last()["tool_choice"] == sent
        assert len(fake_chat.last()["tools"]) == 2


def test_allowed_tools_filters_the_tool_list(client, fake_chat):
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]}
    body = create(client, model="chat", input="x", tools=[WEATHER, TIME], tool_choice=choice)
    assert body["tool_choice"] == choice
    sent = fake_chat.last()
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_time"] and sent["tool_choice"] == "required"


def test_no_tools_sends_no_tool_fields(client, fake_chat):
    create(client, model="chat", input="x", parallel_tool_calls=False)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(fake_chat.last())


def test_upstream_key_is_sent_as_bearer(client, fake_chat):
    create(client, model="chat", input="x")
    assert fake_chat.headers[-1]["Authorization"] == "Bearer sk-upstream-secret-value"


def test_prefix_route_passes_the_model_name(client, fake_chat):
    body = create(client, model="mock-text", input="x")
    assert body["model"] == "mock-text" and fake_chat.last()["model"] == "mock-text"


def test_models_lists_configured_names(client):
    assert {m.id for m in client.models.list()} == {"chat", "hang", "unreachable"}
    assert client.models.retrieve("chat").owned_by == "openai-chat"
    assert client.models.retrieve("mock-anything").id == "mock-anything"  # served by the mock-* route
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("nope")
    assert missing.value.body["code"] == "model_not_found"


def test_openai_itself_gets_its_own_parameter_names():
    """Only api.openai.com gets `max_completion_tokens`, `developer` and OpenAI-only knobs; other
    Chat Completions servers get the names they all understand (checked on the pure translation,
    since no test reaches api.openai.com)."""
    from rejoinder.engine.engine import settings
    from rejoinder.protocol.request import decode_create_response
    from rejoinder.providers.base import ModelRequest
    from rejoinder.providers.openai_chat_body import chat_body

    request = decode_create_response(
        b'{"model": "m", "input": [{"role": "developer", "content": "Rules."}, {"role": "user", "content": "hi"}], "max_output_tokens": 99,'
        b' "service_tier": "flex", "text": {"verbosity": "low"}, "prompt_cache_retention": "24h"}'
    )
    turn = settings(request)
    openai = chat_body(ModelRequest(turn, request.items, "gpt-5", False), openai_host=True)
    assert openai["max_completion_tokens"] == 99 and "max_tokens" not in openai
    assert openai["messages"][0]["role"] == "developer"
    assert (openai["service_tier"], openai["verbosity"], openai["prompt_cache_retention"]) == ("flex", "low", "24h")
    turn.text.verbosity = None  # elsewhere it is refused (tests/test_request_surface.py)
    other = chat_body(ModelRequest(turn, request.items, "llama", False), openai_host=False)
    assert other["max_tokens"] == 99 and other["messages"][0]["role"] == "system"
    assert not {"service_tier", "verbosity", "prompt_cache_retention", "max_completion_tokens"} & set(other)
