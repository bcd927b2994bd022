"""A response whose id a client has seen is never a 404 afterwards, not even after `kill -9`.

A stream's response is recorded as in progress before its client sees `response.created`;
when the instance making it dies, the next one to start, or another one still running on the
same database, marks it failed once the dead one's heartbeat is older than `instance_ttl`.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import chat_models
from gateway import Gateway
from helpers import post_raw
from spec import check_response
from test_lifecycle import _open_stream

TTL = 1.0


def _gateway(fake_chat, workdir, url: str) -> Gateway:
    return Gateway({"models": chat_models(fake_chat), "database_url": url, "instance_ttl": TTL}, workdir)


def _killed_mid_stream(gw: Gateway) -> str:
    """Open a slow stream, see its id, then `kill -9` the gateway; the id."""
    conn, received = _open_stream(gw.port)
    response_id = received.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
    os.kill(gw.process.pid, signal.SIGKILL)
    gw.process.wait()
    conn.close()
    return response_id


def _read_until_failed(gw: Gateway, response_id: str) -> dict:
    """GET the response until it reads failed; every read must find it."""
    deadline = time.monotonic() + 10 * TTL + 10
    while True:
        status, _, body = post_raw(gw, "GET", f"/v1/responses/{response_id}")
        assert status == 200, body  # never a 404
        if body["status"] != "in_progress" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _assert_interrupted(body: dict) -> None:
    check_response(body)
    assert body["status"] == "failed"
    assert body["error"]["code"] == "server_error" and "stopped before it finished" in body["error"]["message"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_after_kill_9_the_next_start_marks_the_stream_failed(fake_chat, tmp_path, request, backend):
    url = f"sqlite:///{tmp_path}/r.db" if backend == "sqlite" else request.getfixturevalue("fresh_postgres_url")
    first = _gateway(fake_chat, tmp_path, url).start()
    response_id = _killed_mid_stream(first)
    second = _gateway(fake_chat, tmp_path, url).start()
    try:
        _assert_interrupted(_read_until_failed(second, response_id))
    finally:
        second.stop()


def test_another_instance_marks_a_dead_ones_stream_failed_while_running(fake_chat, tmp_path, fresh_postgres_url):
    survivor = _gateway(fake_chat, tmp_path, fresh_postgres_url).start()
    doomed = _gateway(fake_chat, tmp_path, fresh_postgres_url).start()
    try:
        conn, received = _open_stream(doomed.port)
        response_id = received.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        status, _, live = post_raw(survivor, "GET", f"/v1/responses/{response_id}")
        assert status == 200 and live["status"] == "in_progress"  # recorded before the client saw it
        check_response(live)
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
        conn.close()
        _assert_interrupted(_read_until_failed(survivor, response_id))
    finally:
        survivor.stop()
        doomed.stop()


def test_a_finished_stream_replaces_its_in_progress_record(fake_chat, tmp_path):
    gw = _gateway(fake_chat, tmp_path, f"sqlite:///{tmp_path}/r.db").start()
    try:
        status, _, streamed = post_raw(gw, "POST", "/v1/responses", b'{"model": "chat", "input": "x", "stream": true}')
        final = streamed["events"][-1]["response"]
        time.sleep(3 * TTL)  # the reaper has run several times meanwhile: a live instance's record is left alone
        status, _, stored = post_raw(gw, "GET", f"/v1/responses/{final['id']}")
        assert status == 200 and stored == final and stored["status"] == "completed"
    finally:
        gw.stop()
