"""Conversations: the `/v1/conversations` API and the `conversation` parameter, through the
official SDK (`client.conversations.*`), every body validated against the spec."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import assert_envelope, create, stream, wait_until
from providers import models

HELLO = "Hello, world!"


def texts(items) -> list[tuple[str, str]]:
    """(role, text) of each message item, in order."""
    return [(item.role, item.content[0].text) for item in items if item.type == "message"]


def test_create_read_update_delete(store_gateway):
    client = sdk(store_gateway)
    conversation = client.conversations.create(metadata={"topic": "demo"}, items=[{"type": "message", "role": "user", "content": "Hi"}])
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "demo"}
    assert client.conversations.retrieve(conversation.id).created_at == conversation.created_at
    assert client.conversations.update(conversation.id, metadata={"topic": "changed"}).metadata == {"topic": "changed"}
    assert client.conversations.create().metadata == {}  # no body at all
    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id and deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)


def test_items_get_ids_keep_order_and_page(store_gateway):
    client = sdk(store_gateway)
    conversation = client.conversations.create(items=[{"role": "user", "content": f"m{i}"} for i in range(20)])
    added = client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    )
    assert [item.id.startswith("msg_") for item in added.data] == [True, True]
    newest = client.conversations.items.list(conversation.id, limit=3)  # default order: newest first
    assert [item.content[0].text for item in newest.data] == ["b", "a", "m19"] and newest.has_more
    oldest = client.conversations.items.list(conversation.id, order="asc", limit=2, after=newest.data[2].id)
    assert [item.content[0].text for item in oldest.data] == ["a", "b"] and not oldest.has_more
    item = client.conversations.items.retrieve(added.data[0].id, conversation_id=conversation.id)
    assert item.id == added.data[0].id and item.role == "assistant"
    after_delete = client.conversations.items.delete(added.data[0].id, conversation_id=conversation.id)
    assert after_delete.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(added.data[0].id, conversation_id=conversation.id)
    assert len(client.conversations.items.list(conversation.id, limit=100).data) == 21


def test_sdk_auto_pagination_over_250_items(client):
    conversation = client.conversations.create()
    for start in range(0, 250, 20):
        client.conversations.items.create(conversation.id, items=[{"role": "user", "content": f"{n}"} for n in range(start, min(start + 20, 250))])
    seen = [item.content[0].text for item in client.conversations.items.list(conversation.id, limit=100, order="asc")]
    assert seen == [str(n) for n in range(250)]


def test_bad_requests(gateway, client):
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as too_many:
        client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "x"}] * 21)
    assert too_many.value.body["param"] == "items"
    with pytest.raises(openai.BadRequestError) as bad_metadata:
        client.conversations.create(metadata={"k" * 65: "v"})
    assert bad_metadata.value.body["param"].startswith("metadata")
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(model="mock-text", input="Hi", conversation=conversation.id, previous_response_id="resp_1")
    assert both.value.body["param"] == "conversation"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="mock-text", input="Hi", conversation="conv_unknown")
    assert_envelope(unknown.value.response.json(), "conversation", "not_found")
    with pytest.raises(openai.BadRequestError) as reference:
        client.conversations.items.create(conversation.id, items=[{"type": "item_reference", "id": "msg_nowhere"}])
    assert reference.value.body["code"] == "item_not_found"


def test_turns_read_and_extend_the_conversation(store_gateway, fake_chat):
    client = sdk(store_gateway)
    conversation = client.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    first = create(client, model="mock-text", input="Hi", conversation=conversation.id)
    assert first["conversation"] == {"id": conversation.id}
    assert [m["content"] for m in fake_chat.last()["messages"]] == ["My name is Ada.", "Hi"]
    second = create(client, model="mock-text", input="Again", conversation={"id": conversation.id}, instructions="Be brief.")
    assert second["previous_response_id"] is None
    assert [m["content"] for m in fake_chat.last()["messages"]] == ["Be brief.", "My name is Ada.", "Hi", HELLO, "Again"]
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert texts(items) == [("user", "My name is Ada."), ("user", "Hi"), ("assistant", HELLO), ("user", "Again"), ("assistant", HELLO)]
    # the same objects through the response's input_items and its output
    assert client.responses.input_items.list(second["id"]).data[0].id == items[3].id
    assert second["output"][0]["id"] == items[4].id


def test_a_streamed_turn_appends_before_its_terminal_event(client):
    conversation = client.conversations.create()
    events = stream(client, model="mock-text", input="Hi", conversation=conversation.id)
    assert events[-1]["response"]["conversation"] == {"id": conversation.id}
    assert len(client.conversations.items.list(conversation.id).data) == 2  # read right after the stream ended


def test_failed_turns_append_nothing_and_store_false_still_appends(client):
    conversation = client.conversations.create()
    events = stream(client, model="mock-midstream-error", input="Hi", conversation=conversation.id)
    assert events[-1]["type"] == "response.failed"
    with pytest.raises(openai.APIStatusError):
        client.responses.create(model="mock-error-500", input="Hi", conversation=conversation.id)
    assert client.conversations.items.list(conversation.id).data == []
    unstored = create(client, model="mock-text", input="Off the record", conversation=conversation.id, store=False)
    assert texts(client.conversations.items.list(conversation.id, order="asc").data) == [("user", "Off the record"), ("assistant", HELLO)]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored["id"])


def test_a_background_turn_appends_when_it_ends(client):
    conversation = client.conversations.create()
    queued = client.responses.create(model="mock-text", input="Hi", conversation=conversation.id, background=True)
    assert wait_until(lambda: client.responses.retrieve(queued.id).status == "completed")
    assert texts(client.conversations.items.list(conversation.id, order="asc").data) == [("user", "Hi"), ("assistant", HELLO)]


def test_ten_concurrent_turns_keep_their_items_together(store_gateway):
    client = sdk(store_gateway)
    conversation = client.conversations.create()
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: create(client, model="mock-tenth", input=f"turn {n}", conversation=conversation.id), range(10)))
    items = client.conversations.items.list(conversation.id, order="asc", limit=100).data
    assert len(items) == 20
    pairs = [(items[i], items[i + 1]) for i in range(0, 20, 2)]
    assert all(user.role == "user" and answer.role == "assistant" for user, answer in pairs)  # each turn's two items together
    assert sorted(user.content[0].text for user, _ in pairs) == sorted(f"turn {n}" for n in range(10))


@pytest.mark.parametrize("model", models("text", remote_only=True))
def test_every_provider(multi, fake_anthropic, fake_gemini, fake_responses, model):
    conversation = multi.conversations.create(items=[{"role": "user", "content": "Remember: blue."}])
    create(multi, model=model, input="Hi", conversation=conversation.id)
    create(multi, model=model, input="Colour?", conversation=conversation.id)
    upstream = {"claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    assert "Remember: blue." in str(upstream.last()) and "Hi" in str(upstream.last())
    assert len(multi.conversations.items.list(conversation.id).data) == 5


def test_client_named_conversations_behind_a_switch(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("named")
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "create_missing_conversations": True}
    gw = Gateway(config, workdir).start()
    try:
        client = sdk(gw)
        create(client, model="mock-text", input="Hi", conversation="conv_my_session")
        create(client, model="mock-text", input="Again", conversation="conv_my_session")
        assert len(client.conversations.items.list("conv_my_session").data) == 4
        assert client.conversations.retrieve("conv_my_session").metadata == {}
    finally:
        gw.stop()
