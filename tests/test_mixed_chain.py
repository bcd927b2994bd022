"""One `previous_response_id` chain across every provider: each turn's items are valid input
for the next provider, and reasoning state goes back only to the provider that made it."""

from __future__ import annotations

from helpers import WEATHER, create, stream


def test_chain_across_providers(multi, fake_chat, fake_anthropic, fake_gemini, fake_responses):
    chat = create(multi, model="mock-reasoning", input="Hello!", reasoning={"effort": "low"})
    assert [item["type"] for item in chat["output"]] == ["reasoning", "message"]

    claude = stream(
        multi, model="claude-thinking-tool", previous_response_id=chat["id"], input="Weather in Paris?", tools=[WEATHER], reasoning={"effort": "low"}
    )[-1]["response"]
    sent = fake_anthropic.last()
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "Hi there!"}]  # chat's reasoning stays behind
    assert [item["type"] for item in claude["output"]] == ["reasoning", "message", "function_call"]
    call = claude["output"][2]

    gemini = create(
        multi,
        model="gemini-text",
        previous_response_id=claude["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": '{"c": 18}'}],
        tools=[WEATHER],
    )
    contents = fake_gemini.last()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[3]["parts"] == [{"text": "Let me check."}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]  # no Anthropic signature
    assert contents[4]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"c": 18}}}]

    openai = create(multi, model="oai-text", previous_response_id=gemini["id"], input="Thanks. And tomorrow?")
    sent_items = fake_responses.last()["input"]
    assert [item["type"] for item in sent_items] == ["message", "message", "message", "message", "function_call", "function_call_output", "message", "message"]
    assert all(item["type"] != "reasoning" for item in sent_items)

    create(multi, model="chat", previous_response_id=openai["id"], input="Bye.")
    messages = fake_chat.last()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant", "user"]
    assert messages[3] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [{"id": call["call_id"], "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
    }
    assert messages[-1] == {"role": "user", "content": "Bye."}
