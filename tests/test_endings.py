"""Every way a response ends, on every transport, read back every way (`engine.lifecycle`).

A table of endings (completed, incomplete, failed mid-stream; cancelled by the client, by a
cancel request, while queued; failed because its instance died) is walked over SSE, WebSocket
mode and a background run, and each ending is read back as it was sent, by replaying a
background run's log, and by `GET`. Every event and body is checked against the spec; the same
ending reads the same everywhere: the same event types, the same final Response in the
terminal event and in `GET`, the same statuses on the items it cut short.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import events_of, raw_stream, stream, types, wait_until
from sockets import Socket
from spec import check, check_response

from rejoinder.engine import lifecycle
from rejoinder.store.runs import Endings

ENDINGS = {  # status → (the fake upstream's scenario, the incomplete reason)
    "completed": ("mock-text", None),
    "incomplete": ("mock-length", "max_output_tokens"),
    "failed": ("mock-midstream-error", None),
}
TERMINAL = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


@pytest.fixture(scope="module")
def gw(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("endings")
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "background": {"poll": 0.1}}
    gateway = Gateway(config, workdir).start()
    yield gateway
    gateway.stop()


def _sse(gw: Gateway, model: str) -> list[dict]:
    return stream(sdk(gw), model=model, input="Tell me")


def _websocket(gw: Gateway, model: str) -> list[dict]:
    with Socket(sdk(gw)) as socket_:
        return socket_.turn(model=model, input="Tell me")


def _background(gw: Gateway, model: str) -> list[dict]:
    """The run's events as it streams them to the client that queued it, checked against its
    log replayed from the start afterwards: the same events, byte for byte."""
    client = sdk(gw)
    with client.responses.with_streaming_response.create(model=model, input="Tell me", background=True, stream=True) as raw:
        sent = raw.read()
    response_id = events_of(sent)[0]["response"]["id"]
    assert raw_stream(gw, response_id) == sent
    return events_of(sent)


TRANSPORTS = {"sse": _sse, "websocket": _websocket, "background": _background}


def _without_queueing(events: list[dict]) -> list[str]:
    return [kind for kind in types(events) if kind != "response.queued"]


@pytest.mark.parametrize("status", ENDINGS)
def test_an_ending_reads_the_same_on_every_transport_and_in_get(gw, status):
    model, reason = ENDINGS[status]
    client = sdk(gw)
    seen: dict[str, list[str]] = {}
    for transport, run in TRANSPORTS.items():
        events = run(gw, model)
        numbers = [event["sequence_number"] for event in events]
        assert numbers == list(range(len(events))), (transport, numbers)
        terminal = events[-1]
        assert terminal["type"] == TERMINAL[status], (transport, types(events))
        assert sum(event["type"] in TERMINAL.values() for event in events) == 1
        final = terminal["response"]
        check_response(final)
        assert final["status"] == status and final["background"] == (transport == "background")
        stored = client.responses.with_raw_response.retrieve(final["id"]).http_response.json()
        assert {k: v for k, v in stored.items() if k != "stream_id"} == final, transport  # GET reads what the terminal event said
        if status == "failed":
            error = events[-2]
            assert error["type"] == "error" and error["code"] == "upstream_error" and error["error"]["type"] == "server_error"
            assert final["error"] == {"code": "server_error", "message": error["message"]}
            assert [item["status"] for item in final["output"]] == ["incomplete"]  # the partial message, cut short
        else:
            assert final["error"] is None
            assert final["incomplete_details"] == ({"reason": reason} if reason else None)
            assert (final["completed_at"] is not None) == (status == "completed")
            assert {item["status"] for item in final["output"]} == {"incomplete" if reason else "completed"}
        seen[transport] = _without_queueing(events)
    assert seen["sse"] == seen["websocket"] == seen["background"], seen


def _open_raw_stream(gw: Gateway, model: str) -> tuple[socket.socket, str]:
    """A raw streaming request, read until its first text delta; the socket and the id."""
    conn = socket.create_connection(("127.0.0.1", gw.port))
    body = b'{"model": "%s", "input": "go on", "stream": true}' % model.encode()
    conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    received = b""
    while b"response.output_text.delta" not in received:
        received += conn.recv(65536)
    return conn, received.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()


def _cancelled_by_leaving_sse(gw: Gateway) -> str:
    conn, response_id = _open_raw_stream(gw, "mock-slow")
    conn.close()
    return response_id


def _cancelled_by_closing_the_socket(gw: Gateway) -> str:
    socket_ = Socket(sdk(gw))
    socket_.connection.response.create(model="mock-slow", input="go on")
    frames = socket_.until(lambda frame: frame["type"] == "response.output_text.delta")
    socket_.close()
    return frames[0]["response"]["id"]


def _cancelled_by_request(gw: Gateway) -> str:
    client = sdk(gw)
    created = client.responses.create(model="mock-slow", input="go on", background=True)
    assert wait_until(lambda: client.responses.retrieve(created.id).output_text, 10)
    cancelled = client.responses.with_raw_response.cancel(created.id).http_response.json()
    check_response(cancelled)
    assert cancelled["status"] == "cancelled"
    events = events_of(raw_stream(gw, created.id))
    assert "response.in_progress" in types(events) and not set(types(events)) & set(TERMINAL.values())  # a cancelled stream just ends
    return created.id


@pytest.mark.parametrize("cancel", [_cancelled_by_leaving_sse, _cancelled_by_closing_the_socket, _cancelled_by_request])
def test_a_cancelled_response_keeps_its_partial_output_cut_short(gw, cancel):
    response_id = cancel(gw)
    client = sdk(gw)
    assert wait_until(lambda: client.responses.retrieve(response_id).status == "cancelled", 10)
    stored = client.responses.with_raw_response.retrieve(response_id).http_response.json()
    check_response(stored)
    assert stored["error"] is None and stored["output"] and {item["status"] for item in stored["output"]} == {"incomplete"}
    assert stored["output"][0]["content"][0]["text"].startswith("Partial")


def test_a_queued_run_cancelled_before_it_runs_ends_with_nothing_of_its_own(fake_chat, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "background": {"max_concurrent": 1, "poll": 0.1}}
    narrow = Gateway(config, tmp_path).start()
    try:
        client = sdk(narrow)
        holder = client.responses.create(model="mock-slow", input="hold the slot", background=True)
        waiting = client.responses.create(model="mock-text", input="wait", background=True)
        cancelled = client.responses.with_raw_response.cancel(waiting.id).http_response.json()
        check_response(cancelled)
        assert cancelled["status"] == "cancelled" and cancelled["output"] == []
        assert types(events_of(raw_stream(narrow, waiting.id))) == ["response.created", "response.queued"]
        client.responses.cancel(holder.id)
    finally:
        narrow.stop()


def test_a_dead_instances_responses_end_as_the_engine_ends_them(fake_chat, tmp_path):
    """`kill -9` mid-stream, for a foreground stream and a background run: the next instance
    ends both failed, with their items cut short (a foreground stream's record holds none: it is
    written once, as the stream starts), and closes the run's log with the events a failure
    always ends with."""
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "instance_ttl": 1.0, "background": {"poll": 0.1}}
    doomed = Gateway(config, tmp_path).start()
    client = sdk(doomed)
    run = client.responses.create(model="mock-slow", input="go on", background=True)
    assert wait_until(lambda: client.responses.retrieve(run.id).output_text, 10)
    _, foreground = _open_raw_stream(doomed, "mock-slow")
    time.sleep(0.3)  # the run's snapshot with its partial output is written
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    survivor = Gateway(config, tmp_path).start()
    try:
        client = sdk(survivor)
        for response_id in (run.id, foreground):
            assert wait_until(lambda: client.responses.retrieve(response_id).status == "failed", 10)
            stored = client.responses.with_raw_response.retrieve(response_id).http_response.json()
            check_response(stored)
            assert stored["error"] == {"code": "server_error", "message": "The gateway instance that was generating this response stopped before it finished."}
            assert all(item["status"] == "incomplete" for item in stored["output"])
        assert client.responses.retrieve(run.id).output  # the run's snapshot had its partial output, cut short
        events = events_of(raw_stream(survivor, run.id))
        error, failed = events[-2:]
        assert error["type"] == "error" and error["code"] == "server_error" and error["error"]["message"] == error["message"]
        assert failed["type"] == "response.failed" and failed["response"] == client.responses.with_raw_response.retrieve(run.id).http_response.json()
    finally:
        survivor.stop()


def test_the_stores_ending_cuts_items_short_by_their_own_schema():
    """Items a dead instance left open end as the builder ends them: a web search (whose
    schema has no `incomplete`) failed, a message incomplete; the result is a valid Response."""
    endings: Endings = lifecycle.store_endings(lambda status, response_id: [])
    search = {"id": "ws_1", "type": "web_search_call", "status": "searching", "action": {"type": "search", "query": "q"}}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [{"type": "output_text", "text": "Part", "annotations": [], "logprobs": []}],
    }
    body, closing = endings.end(json.dumps(_skeleton([search, message])).encode(), "failed", "interrupted", b'{"include": []}', 4)
    response = json.loads(body)
    assert [item["status"] for item in response["output"]] == ["failed", "incomplete"]
    check_response(response)
    check("Response", response)
    frames = closing.decode().split("\n\n")[:-1]
    assert [frame.split("\n")[0] for frame in frames] == ["event: error", "event: response.failed"]
    assert '"sequence_number":5' in frames[0] and '"sequence_number":6' in frames[1]
    assert json.loads(frames[1].split("\n")[1].removeprefix("data: "))["response"] == response
    body, closing = endings.end(json.dumps(_skeleton([dict(search, status="in_progress")])).encode(), "cancelled", "", None, None)
    cancelled = json.loads(body)
    assert closing == b"" and cancelled["status"] == "cancelled" and cancelled["output"][0]["status"] == "failed"


def _skeleton(output: list[dict]) -> dict:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "in_progress",
        "background": True,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "m",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "metadata": {},
        "usage": None,
    }
