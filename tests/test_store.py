"""Stored responses, input items and `previous_response_id` chains, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import urllib.request

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, post_raw, stream
from spec import check


@pytest.fixture
def store_client(store_gateway):
    return sdk(store_gateway)


def test_get_returns_what_create_returned(store_client):
    body = create(store_client, model="chat", input="hi", metadata={"a": "b"})
    raw = store_client.responses.with_raw_response.retrieve(body["id"]).http_response.json()
    assert raw == body


def test_streamed_response_is_stored_before_its_terminal_event(store_client):
    events = stream(store_client, model="chat", input="hi")
    final = events[-1]["response"]
    # The terminal event was the last thing sent, so the record had to exist by then.
    assert store_client.responses.with_raw_response.retrieve(final["id"]).http_response.json() == final


def test_the_terminal_event_waits_for_the_stored_record(fake_chat, tmp_path):
    """While the database is locked, the finished response cannot be stored, so its terminal
    event must not leave; once it does, a GET on a new connection already reads it final.
    (Moving the save after the terminal event makes the first assertion fail.)"""
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path).start()
    try:
        conn = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        body = b'{"model": "mock-pause", "input": "hi", "stream": true}'
        conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while b"response.output_text.delta" not in received:
            received += conn.recv(65536)
        lock = sqlite3.connect(tmp_path / "r.db", timeout=5)
        lock.execute("BEGIN IMMEDIATE")  # the gateway's writer now waits (busy_timeout 5 s)
        conn.settimeout(0.2)
        deadline = time.monotonic() + 1.5  # the upstream finishes after 0.5 s
        while time.monotonic() < deadline:
            try:
                received += conn.recv(65536)
            except TimeoutError:
                pass
            assert b"response.completed" not in received, "the terminal event left before the response was stored"
        lock.rollback()
        conn.settimeout(10)
        while b"response.completed" not in received:
            received += conn.recv(65536)
        terminal = json.loads(received.split(b"event: response.completed\ndata: ", 1)[1].split(b"\n", 1)[0])
        status, _, stored = post_raw(gw, "GET", f"/v1/responses/{terminal['response']['id']}")  # a new connection
        assert status == 200 and stored == terminal["response"] and stored["status"] == "completed"
        conn.close()
    finally:
        gw.stop()


def test_delete(store_client):
    body = create(store_client, model="chat", input="hi")
    deleted = store_client.responses.with_raw_response.delete(body["id"]).http_response.json()
    assert deleted == {"id": body["id"], "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError) as missing:
        store_client.responses.retrieve(body["id"])
    assert missing.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        store_client.responses.delete(body["id"])


def test_input_items_pagination(store_client):
    inputs = [{"role": "user", "content": f"message {i}"} for i in range(5)]
    body = create(store_client, model="chat", input=inputs, instructions="not an item")
    raw = store_client.responses.input_items.with_raw_response.list(body["id"]).http_response.json()
    check("ResponseItemList", raw)
    texts = [item["content"][0]["text"] for item in raw["data"]]
    assert texts == [f"message {i}" for i in reversed(range(5))]  # newest first by default
    assert raw["first_id"] == raw["data"][0]["id"] and raw["last_id"] == raw["data"][-1]["id"] and raw["has_more"] is False
    assert all(item["type"] == "message" and item["role"] == "user" and item["status"] == "completed" for item in raw["data"])

    page1 = store_client.responses.input_items.list(body["id"], order="asc", limit=2)
    assert [i.content[0].text for i in page1.data] == ["message 0", "message 1"] and page1.has_more
    page2 = store_client.responses.input_items.list(body["id"], order="asc", limit=2, after=page1.last_id)
    assert [i.content[0].text for i in page2.data] == ["message 2", "message 3"] and page2.has_more
    page3 = store_client.responses.input_items.list(body["id"], order="asc", limit=2, after=page2.last_id)
    assert [i.content[0].text for i in page3.data] == ["message 4"] and not page3.has_more
    every = [i.content[0].text for i in store_client.responses.input_items.list(body["id"], limit=2)]  # SDK auto-paging
    assert every == [f"message {i}" for i in reversed(range(5))]

    with pytest.raises(openai.BadRequestError):
        store_client.responses.input_items.list(body["id"], limit=101)
    with pytest.raises(openai.NotFoundError):
        store_client.responses.input_items.list("resp_missing")


def test_previous_response_chain_sees_items_but_not_instructions(store_client, fake_chat):
    first = create(store_client, model="chat", input="My name is Ada.", instructions="First instructions")
    second = create(store_client, model="chat", input="What is my name?", previous_response_id=first["id"])
    assert second["previous_response_id"] == first["id"]
    create(store_client, model="chat", input="And again?", previous_response_id=second["id"], instructions="Third instructions")
    assert fake_chat.last()["messages"] == [
        {"role": "system", "content": "Third instructions"},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "And again?"},
    ]


def test_tool_loop_over_previous_response_id(store_client, fake_chat):
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = create(store_client, model="mock-tool-single", input="Weather in Paris?", tools=tools)
    call = first["output"][0]
    create(
        store_client,
        model="chat",
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": '{"temp": 18}'}],
        tools=tools,
    )
    assert fake_chat.last()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp": 18}'},
    ]


def test_unknown_deleted_and_unstored_previous_responses(store_client):
    for missing in ("resp_doesnotexist",):
        with pytest.raises(openai.NotFoundError) as error:
            store_client.responses.create(model="chat", input="x", previous_response_id=missing)
        assert error.value.body["param"] == "previous_response_id" and error.value.body["code"] == "previous_response_not_found"
    unstored = create(store_client, model="chat", input="x", store=False)
    assert unstored["store"] is False
    with pytest.raises(openai.NotFoundError):
        store_client.responses.retrieve(unstored["id"])
    with pytest.raises(openai.NotFoundError):
        store_client.responses.create(model="chat", input="x", previous_response_id=unstored["id"])
    gone = create(store_client, model="chat", input="x")
    store_client.responses.delete(gone["id"])
    with pytest.raises(openai.NotFoundError):
        store_client.responses.create(model="chat", input="x", previous_response_id=gone["id"])


def test_item_reference(store_client, fake_chat):
    first = create(store_client, model="chat", input="Remember this.")
    output_id = first["output"][0]["id"]
    second = create(store_client, model="chat", input=[{"type": "item_reference", "id": output_id}, {"role": "user", "content": "Repeat it."}])
    assert fake_chat.last()["messages"] == [{"role": "assistant", "content": "Hello, world!"}, {"role": "user", "content": "Repeat it."}]
    listed = store_client.responses.input_items.list(second["id"], order="asc")
    assert listed.data[0].id == output_id and listed.data[0].type == "message"
    with pytest.raises(openai.BadRequestError) as error:
        store_client.responses.create(model="chat", input=[{"type": "item_reference", "id": "msg_nope"}])
    assert error.value.body["param"] == "input[0].id"


def test_include_encrypted_content_is_validated_on_get(store_client):
    body = create(store_client, model="chat", input="x")
    got = store_client.responses.retrieve(body["id"], include=["reasoning.encrypted_content"])
    assert got.id == body["id"]
    with pytest.raises(openai.BadRequestError):
        store_client.responses.retrieve(body["id"], include=["bogus"])  # type: ignore[list-item]


def test_ready_reports_the_database(store_gateway):
    with urllib.request.urlopen(store_gateway.url + "/ready") as response:
        assert json.loads(response.read()) == {"status": "ready"}


def test_responses_survive_a_restart(store_gateway):
    client = sdk(store_gateway)
    body = create(client, model="chat", input="persist me")
    store_gateway.restart()
    client = sdk(store_gateway)
    assert client.responses.with_raw_response.retrieve(body["id"]).http_response.json() == body
    assert client.responses.create(model="chat", input="next", previous_response_id=body["id"]).status == "completed"


def test_two_instances_share_one_postgresql(fake_chat, fresh_postgres_url, tmp_path):
    """Two gateways started at once on a new database: both migrate it safely (one waits on the
    other's advisory lock), and each reads what the other wrote, chains included."""
    from conftest import chat_models
    from gateway import Gateway

    config = {"models": chat_models(fake_chat), "database_url": fresh_postgres_url}
    first, second = Gateway(config, tmp_path), Gateway(config, tmp_path)
    try:
        first.launch()
        second.launch()
        first.wait_healthy()
        second.wait_healthy()
        written = create(sdk(first), model="chat", input="from the first instance")
        read = sdk(second).responses.with_raw_response.retrieve(written["id"]).http_response.json()
        assert read == written
        follow = create(sdk(second), model="chat", input="and on", previous_response_id=written["id"])
        assert sdk(first).responses.retrieve(follow["id"]).previous_response_id == written["id"]
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("deleted", [0, 1])
def test_a_turn_on_a_chain_whose_history_was_deleted_is_refused(store_client, deleted):
    """Deleting A in A → B → C never silently shortens what a turn on C sees."""
    a = create(store_client, model="chat", input="first")
    b = create(store_client, model="chat", input="second", previous_response_id=a["id"])
    c = create(store_client, model="chat", input="third", previous_response_id=b["id"])
    gone = (a, b)[deleted]
    store_client.responses.delete(gone["id"])
    with pytest.raises(openai.BadRequestError) as refused:
        store_client.responses.create(model="chat", input="fourth", previous_response_id=c["id"])
    assert refused.value.body["code"] == "previous_response_not_found" and refused.value.body["param"] == "previous_response_id"
    assert gone["id"] in refused.value.body["message"]
    assert store_client.responses.retrieve(c["id"]).status == "completed"  # C itself is still there
