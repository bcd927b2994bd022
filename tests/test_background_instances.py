"""Background runs across instances on the real PostgreSQL and Redis: any instance follows or
cancels any run, a dead instance's runs end (or run again) exactly once, and SIGTERM hands runs
back instead of losing them."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request

import psycopg
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import events_of, post_raw, raw_stream, types, wait_until

TTL = 1.0
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _gateway(fake_chat, workdir, database_url: str, redis_url: str | None, **extra) -> Gateway:
    config = {"models": chat_models(fake_chat), "database_url": database_url, "instance_ttl": TTL, "background": {"poll": 0.1}, **extra}
    if redis_url:
        config["redis_url"] = redis_url
    return Gateway(config, workdir)


@pytest.fixture
def pair(fake_chat, tmp_path, fresh_postgres_url, redis_url):
    a = _gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url).start()
    b = _gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url).start()
    yield a, b
    a.stop()
    b.stop()


def _post_stream(gw: Gateway, body: bytes, into: list[bytes]) -> threading.Thread:
    """POST a streaming request on a thread; its raw bytes land in `into`."""

    def read() -> None:
        request = urllib.request.Request(gw.url + "/v1/responses", data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            into.append(response.read())

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def _assert_logged_once(gw: Gateway, response_id: str, status: str) -> None:
    """The run's whole log read from `gw`: numbered 0…n, at most one terminal event, last."""
    events = events_of(raw_stream(gw, response_id))
    assert events[0]["sequence_number"] == 0
    ends = [name for name in types(events) if name in TERMINAL]
    if status == "cancelled":
        assert ends == []
    else:
        assert ends == [f"response.{status}"] and types(events)[-1] == ends[0], types(events)


def test_follow_and_cancel_from_another_instance_byte_for_byte(pair):
    a, b = pair
    on_a: list[bytes] = []
    thread = _post_stream(
        a, b'{"model": "mock-slow", "input": "Count", "background": true, "stream": true}', on_a
    )  # ten seconds: the cancel comes mid-run on any machine
    client_b = sdk(b)
    response_id = _the_response_id(a)
    wait_until(lambda: client_b.responses.retrieve(response_id).output_text != "")
    on_b: list[bytes] = []
    follower = threading.Thread(target=lambda: on_b.append(raw_stream(b, response_id, 2)))
    follower.start()
    time.sleep(0.2)
    started = time.monotonic()
    cancelled = client_b.responses.cancel(response_id)
    assert cancelled.status == "cancelled" and time.monotonic() - started < 1.0
    thread.join(10)
    follower.join(10)
    original = events_of(on_a[0])
    assert types(original)[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert on_a[0].endswith(on_b[0]) and events_of(on_b[0]) == [e for e in original if e["sequence_number"] > 2]
    assert sdk(a).responses.retrieve(response_id).status == "cancelled"
    _assert_logged_once(a, response_id, "cancelled")


def _the_response_id(gw: Gateway) -> str:
    """The id of the one response in `gw`'s fresh database, once it is there."""
    ids: list[str] = []

    def stored() -> bool:
        with psycopg.connect(gw.config["database_url"]) as conn:
            ids[:] = [row[0] for row in conn.execute("SELECT id FROM responses")]
        return len(ids) == 1

    assert wait_until(stored, 5)
    return ids[0]


def test_two_hundred_runs_over_two_instances_complete_exactly_once(pair, fake_chat):
    a, b = pair
    clients = [sdk(a), sdk(b)]
    ids = [clients[i % 2].responses.create(model="mock-text", input=f"marker-{i}", background=True).id for i in range(200)]
    assert wait_until(lambda: all(clients[0].responses.retrieve(i).status == "completed" for i in ids), 60)
    asked = [str(body["messages"]) for body in fake_chat.requests]
    for i in range(200):
        assert sum(f"'marker-{i}'" in text for text in asked) == 1, i
    for n, response_id in enumerate(ids[::10]):
        _assert_logged_once((a, b)[n % 2], response_id, "completed")


def test_kill_9_mid_run_twenty_times_ends_every_run_exactly_once(fake_chat, tmp_path, fresh_postgres_url, redis_url):
    survivor = _gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url).start()
    client = sdk(survivor)
    ids: list[str] = []
    try:
        for _ in range(4):  # twenty kills, five instances started at a time
            doomed = [_gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url) for _ in range(5)]
            for gw in doomed:
                gw.launch()
            for gw in doomed:
                gw.wait_healthy()
                ids += [sdk(gw).responses.create(model="mock-paced", input=f"kill-{len(ids) + i}", background=True).id for i in range(2)]
                time.sleep(0.2)  # its runs (or runs queued elsewhere) are under way
                os.kill(gw.process.pid, signal.SIGKILL)
                gw.process.wait()
        ends = {}
        deadline = time.monotonic() + 2 * TTL + 15
        while time.monotonic() < deadline and len(ends) < len(ids):
            for response_id in ids:
                status = client.responses.retrieve(response_id).status
                if status not in ("queued", "in_progress"):
                    ends[response_id] = status
            time.sleep(0.1)
        assert len(ends) == len(ids), [i for i in ids if i not in ends]
        assert set(ends.values()) <= {"completed", "failed"}
        asked = [str(body["messages"]) for body in fake_chat.requests]
        rerun = [i for i in range(len(ids)) if sum(f"'kill-{i}'" in text for text in asked) > 1]
        assert "failed" in ends.values() or rerun  # some runs were caught mid-way by a kill
        for response_id, status in ends.items():
            _assert_logged_once(survivor, response_id, status)
            if status == "failed":
                assert "stopped before it finished" in client.responses.retrieve(response_id).error.message
    finally:
        survivor.stop()


def test_sigterm_finishes_streams_and_hands_back_background_runs(fake_chat, tmp_path, fresh_postgres_url, redis_url):
    leaving = _gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url, shutdown_grace=1.5).start()
    client = sdk(leaving)
    emitting = client.responses.create(model="mock-slow", input="Count", background=True).id  # ten seconds of tokens
    silent = client.responses.create(model="mock-late", input="Wait", background=True).id  # its first byte after three
    foreground: list[bytes] = []
    thread = _post_stream(leaving, b'{"model": "mock-paced", "input": "Count", "stream": true}', foreground)
    assert wait_until(lambda: client.responses.retrieve(emitting).output_text != "")
    leaving.process.send_signal(signal.SIGTERM)
    assert leaving.process.wait(15) == 0
    thread.join(5)
    assert types(events_of(foreground[0]))[-1] == "response.completed"  # the open stream finished
    staying = _gateway(fake_chat, tmp_path, fresh_postgres_url, redis_url).start()
    try:
        other = sdk(staying)
        assert wait_until(lambda: other.responses.retrieve(emitting).status != "in_progress")
        ended = other.responses.retrieve(emitting)  # it had shown output: ended, cleanly
        assert ended.status == "failed" and "shut down" in ended.error.message
        _assert_logged_once(staying, emitting, "failed")
        assert wait_until(lambda: other.responses.retrieve(silent).status == "completed", 15)  # handed back, run here
        _assert_logged_once(staying, silent, "completed")
    finally:
        staying.stop()


def test_a_resume_needs_only_the_database_once_redis_has_lost_the_run(pair, redis_url):
    import redis

    a, b = pair
    client = sdk(a)
    created = client.responses.create(model="mock-text", input="Hi", background=True)
    assert wait_until(lambda: client.responses.retrieve(created.id).status == "completed")
    original = raw_stream(a, created.id)
    redis.Redis.from_url(redis_url).delete(f"rejoinder:run:{created.id}")  # as after a Redis restart
    assert raw_stream(b, created.id) == original
    assert raw_stream(b, created.id, 3) == original[original.index(b"event: ", original.index(b'"sequence_number":3')) :]


def test_deleting_a_running_background_response_stops_it_and_leaves_nothing(pair, fake_chat):
    a, b = pair
    client = sdk(a)
    created = client.responses.create(model="mock-paced", input="Count", background=True)
    wait_until(lambda: client.responses.retrieve(created.id).status == "in_progress")
    client.responses.delete(created.id)
    time.sleep(1.5)
    for gw in (a, b):
        status, _, _ = post_raw(gw, "GET", f"/v1/responses/{created.id}")
        assert status == 404
        status, _, _ = post_raw(gw, "GET", f"/v1/responses/{created.id}?stream=true")
        assert status == 404
    with psycopg.connect(a.config["database_url"]) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
