"""Background runs on one instance (SQLite, no Redis): queue, poll, follow, resume, cancel,
through the official SDK, with every body and event checked against the spec."""

from __future__ import annotations

import time

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import assert_envelope, events_of, post_raw, raw_stream, types, wait_until
from providers import models

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


@pytest.fixture(scope="module")
def narrow(fake_chat, tmp_path_factory):
    """One run at a time, so a second one waits in the queue."""
    workdir = tmp_path_factory.mktemp("narrow")
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "background": {"max_concurrent": 1, "poll": 0.1}}
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


def test_a_background_request_answers_queued_and_completes_while_polled(client):
    created = client.responses.create(model="mock-paced", input="Count", background=True)
    assert created.status == "queued" and created.background is True and created.output == []
    seen = [created.status]
    partial = ""
    while seen[-1] in ("queued", "in_progress"):
        time.sleep(0.05)
        polled = client.responses.retrieve(created.id)
        seen.append(polled.status)
        if polled.status == "in_progress" and polled.output_text:
            partial = polled.output_text  # what was generated so far
    assert seen[-1] == "completed", seen
    assert "in_progress" in seen and partial, seen
    final = client.responses.retrieve(created.id)
    assert final.output_text == "".join(f"t{i} " for i in range(30))
    assert final.output_text.startswith(partial)
    assert final.usage.total_tokens == 29
    assert [item.content[0].text for item in client.responses.input_items.list(created.id)] == ["Count"]


def test_a_background_stream_is_queued_then_runs_like_any_stream(client):
    events = list(client.responses.create(model="mock-text", input="Hi", background=True, stream=True))
    names = [event.type for event in events]
    assert names[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued" and events[1].response.status == "queued"
    assert events[2].response.status == "in_progress"
    assert names[-1] == "response.completed" and sum(name in TERMINAL for name in names) == 1
    assert events[-1].response.output_text == "Hello, world!" and events[-1].response.background is True
    assert [event.sequence_number for event in events] == list(range(len(events)))


def test_a_resumed_stream_repeats_the_original_events_byte_for_byte(gateway, client):
    created = client.responses.create(model="mock-paced", input="Count", background=True)
    original = raw_stream(gateway, created.id)  # follows live from the start to the end
    assert types(events_of(original))[-1] == "response.completed"
    for starting_after in (-1, 0, 1, 2, 7, len(events_of(original)) - 2):
        again = raw_stream(gateway, created.id, starting_after)
        kept = [event for event in events_of(original) if event["sequence_number"] > starting_after]
        assert events_of(again) == kept
        assert original.endswith(again)
    assert raw_stream(gateway, created.id, 10_000) == b""  # nothing after the end
    resumed = list(client.responses.retrieve(created.id, stream=True, starting_after=5))
    assert resumed[0].sequence_number == 6 and resumed[-1].type == "response.completed"


def test_a_follower_that_joins_mid_run_gets_the_rest_live(gateway, client):
    created = client.responses.create(model="mock-paced", input="Count", background=True)
    wait_until(lambda: client.responses.retrieve(created.id).status == "in_progress")
    events = events_of(raw_stream(gateway, created.id, 3))
    assert events[0]["sequence_number"] == 4 and events[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(4, 4 + len(events)))


def test_cancel_stops_a_running_run_within_a_second_and_keeps_its_output(gateway, client, fake_chat):
    created = client.responses.create(model="mock-slow", input="Count", background=True)  # ten seconds: the cancel comes mid-run
    wait_until(lambda: client.responses.retrieve(created.id).output_text != "")
    disconnects = fake_chat.disconnects
    started = time.monotonic()
    cancelled = client.responses.cancel(created.id)
    assert time.monotonic() - started < 1.0
    assert cancelled.status == "cancelled" and cancelled.output_text  # what was generated is kept
    assert wait_until(lambda: fake_chat.disconnects > disconnects)  # the upstream call was closed
    assert client.responses.retrieve(created.id).model_dump() == cancelled.model_dump()
    again = client.responses.cancel(created.id)  # an ended run comes back unchanged
    assert again.model_dump() == cancelled.model_dump()
    events = events_of(raw_stream(gateway, created.id))  # its stream ends, with no terminal event
    assert types(events)[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert not set(types(events)) & set(TERMINAL)


def test_cancel_ends_a_queued_run_before_it_reaches_the_upstream(narrow, fake_chat):
    client = sdk(narrow)
    first = client.responses.create(model="mock-paced", input="first", background=True)
    waiting = client.responses.create(model="mock-text", input="second in line", background=True)
    time.sleep(0.3)
    assert client.responses.retrieve(waiting.id).status == "queued"
    cancelled = client.responses.cancel(waiting.id)
    assert cancelled.status == "cancelled" and cancelled.output == []
    assert wait_until(lambda: client.responses.retrieve(first.id).status == "completed")
    time.sleep(0.3)
    assert client.responses.retrieve(waiting.id).status == "cancelled"
    assert not any("second in line" in str(body) for body in fake_chat.requests)
    assert types(events_of(raw_stream(narrow, waiting.id))) == ["response.created", "response.queued"]


def test_queued_runs_run_in_order_one_at_a_time(narrow, fake_chat):
    client = sdk(narrow)
    ids = [client.responses.create(model="mock-paced", input=f"fifo-{i}", background=True).id for i in range(3)]
    time.sleep(0.2)
    assert [client.responses.retrieve(i).status for i in ids] == ["in_progress", "queued", "queued"]
    assert wait_until(lambda: client.responses.retrieve(ids[0]).status == "completed")
    ids.append(client.responses.create(model="mock-paced", input="fifo-3", background=True).id)  # a slot is free, yet one waits
    assert wait_until(lambda: client.responses.retrieve(ids[-1]).status == "completed", 15)
    asked = [str(body["messages"]) for body in fake_chat.requests if "fifo-" in str(body["messages"])]
    assert [next(f"fifo-{i}" for i in range(4) if f"fifo-{i}" in text) for text in asked] == ["fifo-0", "fifo-1", "fifo-2", "fifo-3"]


def test_an_upstream_failure_fails_the_run_cleanly(gateway, client):
    created = client.responses.create(model="mock-error-500", input="x", background=True)
    assert wait_until(lambda: client.responses.retrieve(created.id).status == "failed")
    failed = client.responses.retrieve(created.id)
    assert failed.error.code == "server_error"
    events = events_of(raw_stream(gateway, created.id))
    assert types(events) == ["response.created", "response.queued", "error", "response.failed"]


def test_a_failure_midway_fails_the_run_and_keeps_the_partial_output(gateway, client):
    created = client.responses.create(model="mock-midstream-error", input="x", background=True)
    assert wait_until(lambda: client.responses.retrieve(created.id).status == "failed")
    events = events_of(raw_stream(gateway, created.id))
    assert types(events)[-2:] == ["error", "response.failed"]
    assert "Partial" in str(events[-1]["response"]["output"])


def test_background_runs_chain_with_previous_response_id(client):
    first = client.responses.create(model="mock-text", input="One", background=True)
    assert wait_until(lambda: client.responses.retrieve(first.id).status == "completed")
    second = client.responses.create(model="mock-text", input="Two", background=True, previous_response_id=first.id)
    assert wait_until(lambda: client.responses.retrieve(second.id).status == "completed")
    assert client.responses.retrieve(second.id).previous_response_id == first.id


def test_a_background_stream_whose_client_leaves_keeps_running(gateway, client):
    with client.responses.create(model="mock-paced", input="Count", background=True, stream=True) as events:
        response_id = next(iter(events)).response.id
    assert wait_until(lambda: client.responses.retrieve(response_id).status == "completed")


@pytest.mark.parametrize("model", models("text", remote_only=True))
def test_background_works_on_every_provider(multi, model):
    created = multi.responses.create(model=model, input="Hi", background=True)
    assert wait_until(lambda: multi.responses.retrieve(created.id).status == "completed")
    assert multi.responses.retrieve(created.id).output_text


def test_the_errors_of_background_requests(gateway, client):
    done = client.responses.create(model="mock-text", input="x")
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.cancel(done.id)
    assert "background" in error.value.message
    status, _, body = post_raw(gateway, "GET", f"/v1/responses/{done.id}?stream=true")
    assert status == 400 and body["error"]["param"] == "stream"
    status, _, body = post_raw(gateway, "POST", "/v1/responses", b'{"model": "mock-text", "input": "x", "background": true, "store": false}')
    assert status == 400
    assert_envelope(body, param="background")
    for method, path in (("POST", "/v1/responses/resp_unknown/cancel"), ("GET", "/v1/responses/resp_unknown?stream=true")):
        status, _, body = post_raw(gateway, method, path)
        assert status == 404, (method, path)
        assert_envelope(body, code="not_found")
    background = client.responses.create(model="mock-text", input="x", background=True)
    status, _, body = post_raw(gateway, "GET", f"/v1/responses/{background.id}?stream=true&starting_after=abc")
    assert status == 400 and body["error"]["param"] == "starting_after"
    status, _, body = post_raw(gateway, "POST", "/v1/responses", b'{"model": "no-such-model", "input": "x", "background": true}')
    assert status == 404  # checked when queued, like any request


def test_background_runs_go_on_when_redis_is_unreachable(fake_chat, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "redis_url": "redis://127.0.0.1:9/0"}
    gw = Gateway(config, tmp_path).start()
    try:
        client = sdk(gw)
        events = list(client.responses.create(model="mock-paced", input="Count", background=True, stream=True))
        assert events[-1].type == "response.completed"
        assert events_of(raw_stream(gw, events[0].response.id, 5))[0]["sequence_number"] == 6
    finally:
        gw.stop()
