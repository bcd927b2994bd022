"""Context that fits: `POST /v1/responses/input_tokens` on every provider (the provider's own
count where it has one, OpenAI's BPE for Chat Completions) and `truncation`."""

from __future__ import annotations

import bpe_openai
import openai
import pytest
from conftest import chat_models, sdk
from fake_server import fake_count
from gateway import Gateway
from helpers import assert_envelope, create, stream
from providers import models

O200K = bpe_openai.get_encoding("o200k_base")


def chat_tokens(*texts: str) -> int:
    """OpenAI's accounting for chat messages: 3 per message plus its text, 3 to prime the reply."""
    return 3 + sum(3 + len(O200K.encode_ordinary(text)) for text in texts)


def test_chat_models_are_counted_with_openais_bpe(client):
    counted = client.responses.input_tokens.count(model="mock-text", input="How many tokens is this sentence?", instructions="Be brief.")
    assert counted.object == "response.input_tokens" and counted.input_tokens == chat_tokens("Be brief.", "How many tokens is this sentence?")


def test_the_count_covers_the_whole_turn(client, gateway):
    first = create(client, model="mock-text", input="Remember the number 42.")
    counted = client.responses.input_tokens.count(model="mock-text", input="Which number?", previous_response_id=first["id"])
    assert counted.input_tokens == chat_tokens("Remember the number 42.", "Hello, world!", "Which number?")
    conversation = client.conversations.create(items=[{"role": "user", "content": "Earlier words."}])
    counted = client.responses.input_tokens.count(model="mock-text", input="Now.", conversation=conversation.id)
    assert counted.input_tokens == chat_tokens("Earlier words.", "Now.")
    with pytest.raises(openai.NotFoundError):
        client.responses.input_tokens.count(model="mock-text", input="x", previous_response_id="resp_missing")


@pytest.mark.parametrize("model", models("text", remote_only=True))
def test_providers_count_with_their_own_endpoint(multi, fake_anthropic, fake_gemini, fake_responses, model):
    counted = multi.responses.input_tokens.count(model=model, input="Count me.", instructions="System words.")
    upstream = {"claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    sent = upstream.last()
    assert counted.input_tokens == fake_count(sent) and "Count me." in str(sent) and "System words." in str(sent)


@pytest.fixture(scope="module")
def tiny(fake_chat, fake_anthropic, tmp_path_factory):
    """Models whose context window is 120 tokens (the fake answers the same whatever it is)."""
    workdir = tmp_path_factory.mktemp("tiny")
    base = f"http://127.0.0.1:{fake_chat.port}/v1"
    models = chat_models(fake_chat) + [
        {"name": "tiny", "provider": "openai-chat", "base_url": base, "upstream_model": "text", "context_window": 120},
        {"name": "tiny-claude", "provider": "anthropic", "base_url": fake_anthropic.url + "/v1", "upstream_model": "claude-text", "context_window": 120},
    ]
    gw = Gateway({"models": models, "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()


LONG = "word " * 200  # some 200 tokens


def test_an_overflow_is_refused_before_the_upstream_call(tiny, fake_chat):
    client = sdk(tiny)
    calls = len(fake_chat.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="tiny", input=LONG)
    assert_envelope(refused.value.response.json(), "input", "context_length_exceeded")
    assert "120" in refused.value.body["message"] and len(fake_chat.requests) == calls
    assert create(client, model="tiny", input="Short.", max_output_tokens=60)["status"] == "completed"
    with pytest.raises(openai.BadRequestError):  # the room kept for the answer counts
        client.responses.create(model="tiny", input="Short, but " + "x " * 40, max_output_tokens=100)


def test_auto_truncation_drops_the_oldest_items(tiny, fake_chat):
    client = sdk(tiny)
    previous = None
    for turn in range(6):
        previous = create(
            client,
            model="tiny",
            input=f"Turn {turn}: " + "blah " * 6,
            previous_response_id=previous,
            truncation="auto",
            instructions="Be brief.",
            max_output_tokens=30,
        )["id"]
    body = create(
        client, model="tiny", input="Last question?", previous_response_id=previous, truncation="auto", instructions="Be brief.", max_output_tokens=30
    )
    assert body["truncation"] == "auto" and body["status"] == "completed"
    sent = fake_chat.last()["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."} and sent[-1] == {"role": "user", "content": "Last question?"}
    assert len(sent) < 1 + 2 * 7 and chat_tokens(*[m["content"] for m in sent]) <= 120 - 30
    with pytest.raises(openai.BadRequestError):  # the same turn without truncation does not fit
        client.responses.create(model="tiny", input="Last question?", previous_response_id=previous, instructions="Be brief.", max_output_tokens=30)


def test_truncation_keeps_calls_with_their_outputs(tiny, fake_chat):
    client = sdk(tiny)
    items = []
    for n in range(8):
        items += [
            {"type": "function_call", "call_id": f"call_{n}", "name": "lookup", "arguments": '{"q": "' + "x" * 20 + '"}'},
            {"type": "function_call_output", "call_id": f"call_{n}", "output": "y" * 30},
        ]
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    create(client, model="tiny", input=[*items, {"role": "user", "content": "Sum up."}], tools=tools, truncation="auto", max_output_tokens=20)
    sent = fake_chat.last()["messages"]
    calls = {call["id"] for message in sent for call in message.get("tool_calls") or ()}
    outputs = {message["tool_call_id"] for message in sent if message["role"] == "tool"}
    assert calls == outputs and 0 < len(calls) < 8 and sent[-1]["content"] == "Sum up."


def test_providers_with_a_count_endpoint_are_asked(tiny, fake_anthropic):
    client = sdk(tiny)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="tiny-claude", input=LONG)
    assert refused.value.body["code"] == "context_length_exceeded"
    assert fake_anthropic.last()["messages"][0]["content"][0]["text"].startswith("word")  # the count call, not a generation


def _history() -> list[dict]:
    return [
        {"role": "user", "content": "My name is Ada and I am planning a trip to Oslo."},
        {"role": "assistant", "content": "Noted: Ada, trip to Oslo."},
        {"role": "user", "content": "I prefer trains."},
        {"role": "assistant", "content": "Trains it is."},
    ]


def test_compact_returns_user_messages_and_a_sealed_summary(client, fake_chat):
    compacted = client.responses.compact(model="mock-text", input=_history(), instructions="Be helpful.")
    assert compacted.object == "response.compaction" and compacted.usage.total_tokens > 0
    kinds = [item.type for item in compacted.output]
    assert kinds == ["message", "message", "compaction"] and all(item.role == "user" for item in compacted.output[:2])
    asked = fake_chat.last()["messages"]
    assert "context checkpoint compaction" in asked[0]["content"] and asked[-1]["content"] == "Write the checkpoint notes now."
    assert "Hello, world!" not in compacted.output[-1].encrypted_content  # sealed, not readable


@pytest.mark.parametrize("model", models("text"))
def test_a_compaction_item_stands_in_for_what_came_before(multi, fake_chat, fake_anthropic, fake_gemini, fake_responses, model):
    compacted = multi.responses.compact(model="mock-text", input=_history())
    replay = [item.model_dump(exclude_none=True) for item in compacted.output]
    create(multi, model=model, input=[*replay, {"role": "user", "content": "Which city?"}])
    upstream = {"mock": fake_chat, "claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    sent = str(upstream.last())
    assert "Summary of the conversation so far" in sent and "Hello, world!" in sent  # the summary the fake wrote
    assert "I prefer trains." in sent and "Trains it is." not in sent  # user messages kept, the rest summarized


def test_a_forged_compaction_is_refused(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="mock-text", input=[{"type": "compaction", "encrypted_content": "forged"}, {"role": "user", "content": "Hi"}])
    assert refused.value.body["code"] == "invalid_encrypted_content"


def test_context_management_compacts_a_long_chain(client, fake_chat):
    previous = None
    for turn in range(3):
        previous = create(client, model="mock-text", input=f"Turn {turn}: " + "lorem ipsum " * 250, previous_response_id=previous)["id"]
    calls = len(fake_chat.requests)
    events = stream(
        client, model="mock-text", input="Where were we?", previous_response_id=previous, context_management=[{"type": "compaction", "compact_threshold": 1000}]
    )
    body = events[-1]["response"]
    assert [item["type"] for item in body["output"]] == ["compaction", "message"]
    assert len(fake_chat.requests) == calls + 2  # the summary, then the turn
    turn_sent = fake_chat.last()["messages"]
    assert sum(message["role"] == "assistant" for message in turn_sent) == 0 and "Summary of the conversation so far" in str(turn_sent)
    after = create(client, model="mock-text", input="And now?", previous_response_id=body["id"])
    assert after["status"] == "completed"
    sent = fake_chat.last()["messages"]
    assert sum(message["role"] == "assistant" for message in sent) == 1  # only the answer after the checkpoint
    small = create(client, model="mock-text", input="Short.", context_management=[{"type": "compaction", "compact_threshold": 1000}])
    assert [item["type"] for item in small["output"]] == ["message"]  # under the threshold: nothing compacted
