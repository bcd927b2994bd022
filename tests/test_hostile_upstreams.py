"""Upstreams that misbehave cannot hold a request or the gateway's memory: every deployment's
deadlines (connect, first event, between events, total) and size caps (one event, a whole body)
end such a call with a clean error, and a stream that already started ends with
`response.failed`, stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import sdk
from gateway import Gateway
from helpers import assert_envelope, post_raw, stream
from spec import check_response

LIMITS = {"first_event_timeout": 1, "timeout": 1, "total_timeout": 20, "max_event_bytes": 1024 * 1024, "max_response_bytes": 1024 * 1024}


@pytest.fixture(scope="module")
def bounded(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bounded")
    model = {"name": "mock-*", "provider": "openai-chat", "base_url": fake_chat.url + "/v1", **LIMITS}
    gw = Gateway({"models": [model], "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()


def _post(gw: Gateway, model: str, streaming: bool) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, _, payload = post_raw(gw, "POST", "/v1/responses", json.dumps({"model": model, "input": "x", "stream": streaming}).encode())
    return status, payload, time.monotonic() - started


@pytest.mark.parametrize("model, limit", [("mock-drip", "first_event_timeout"), ("mock-late-headers", "first_event_timeout")])
def test_no_first_event_in_time_is_a_504(bounded, model, limit):
    status, payload, took = _post(bounded, model, streaming=True)
    assert status == 504, payload
    assert_envelope(payload, code="upstream_timeout")
    assert limit in payload["error"]["message"]
    assert took < 15  # the drip would last 30 s, the late headers 30 s


def test_a_stream_that_goes_quiet_between_events_fails_cleanly_and_is_stored(bounded):
    events = stream(sdk(bounded), model="mock-drip-after-first", input="x")
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["message"].endswith("(timeout: 1 s).")
    error = next(e for e in events if e["type"] == "error")
    assert error["code"] == "upstream_timeout"
    stored = sdk(bounded).responses.retrieve(events[0]["response"]["id"])
    assert stored.status == "failed" and stored.output[0].content[0].text == "Partial"


@pytest.fixture(scope="module")
def patient_first(fake_chat, tmp_path_factory):
    """A deployment that waits long for the first event and little between events."""
    workdir = tmp_path_factory.mktemp("patient")
    limits = {**LIMITS, "first_event_timeout": 30, "timeout": 2, "total_timeout": 120}
    model = {"name": "mock-*", "provider": "openai-chat", "base_url": fake_chat.url + "/v1", **limits}
    gw = Gateway({"models": [model], "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()


def test_the_between_events_deadline_fires_before_the_first_events(patient_first):
    """After the first event, `timeout` (2 s) counts, not `first_event_timeout` (30 s)."""
    started = time.monotonic()
    events = stream(sdk(patient_first), model="mock-drip-after-first", input="x")
    took = time.monotonic() - started
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["message"].endswith("(timeout: 2 s).")
    assert took < 8  # the drip lasts 30 s


def test_a_body_that_drips_is_cut_at_the_read_deadline(patient_first):
    """A whole body must arrive within `timeout` of its headers, though every read is quick."""
    status, payload, took = _post(patient_first, "mock-drip-body", streaming=False)
    assert status == 504, payload
    assert_envelope(payload, code="upstream_timeout")
    assert "(timeout: 2 s)" in payload["error"]["message"]
    assert took < 8  # the body would take a minute


def _rss_kib(gw: Gateway) -> int:
    for line in Path(f"/proc/{gw.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_endless_event_line_is_cut_at_the_cap_without_buffering_it(bounded):
    before = _rss_kib(bounded)
    status, payload, _ = _post(bounded, "mock-endless-line", streaming=True)
    assert status == 502, payload
    assert_envelope(payload, code="upstream_error")
    assert "larger than this gateway accepts (1048576 bytes)" in payload["error"]["message"]
    assert _rss_kib(bounded) - before < 32 * 1024  # the line is 64 MiB; the cap is 1 MiB


def test_a_body_over_the_cap_is_a_502(bounded):
    status, payload, _ = _post(bounded, "mock-huge-body", streaming=False)
    assert status == 502, payload
    assert "response body larger than this gateway accepts" in payload["error"]["message"]


def test_token_counts_beyond_64_bits_fail_cleanly(bounded):
    status, payload, _ = _post(bounded, "mock-usage-overflow", streaming=False)
    assert status == 502, payload
    assert_envelope(payload, code="upstream_error")
    events = stream(sdk(bounded), model="mock-usage-overflow", input="x")
    assert events[-1]["type"] == "response.failed"
    stored = sdk(bounded).responses.with_raw_response.retrieve(events[0]["response"]["id"]).http_response.json()
    check_response(stored)
    assert stored["status"] == "failed" and stored["output"][0]["content"][0]["text"] == "Hello, world!"


def test_an_event_name_that_is_not_utf8_does_no_harm(bounded):
    events = stream(sdk(bounded), model="mock-odd-event-name", input="x")
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello, world!"


def _connections_to(gw: Gateway, port: int) -> int:
    """The gateway process's open TCP connections to `port` on this machine."""
    inodes = set()
    for fd in Path(f"/proc/{gw.process.pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{gw.process.pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def test_idle_upstream_connections_are_capped_after_a_burst(bounded, fake_chat):
    """A hundred calls at once open a hundred connections; once they end, at most 32 stay."""
    from concurrent.futures import ThreadPoolExecutor

    from rejoinder.providers.client import IDLE_PER_HOST

    body = json.dumps({"model": "mock-pause", "input": "x", "stream": True}).encode()
    with ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(lambda _: post_raw(bounded, "POST", "/v1/responses", body)[0], range(100)))
    assert statuses == [200] * 100
    assert 0 < _connections_to(bounded, fake_chat.port) <= IDLE_PER_HOST


COMPLETION = {
    "id": "chatcmpl-raw",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "raw",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Read to the close."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}
RAW_ANSWERS = {
    # HTTP/1.1 without a length or chunking: the body is what comes before the connection closes
    "until-close": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + json.dumps(COMPLETION).encode(),
    "garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",  # not HTTP at all
    "half-headers": b"HTTP/1.1 200 OK\r\nContent-Type: appli",  # then the connection closes
}


@pytest.fixture(scope="module")
def raw_upstream(tmp_path_factory):
    """A bare TCP server on 127.0.0.1 that answers a request with the bytes its model names
    (`RAW_ANSWERS`), then closes; and a gateway in front of it."""
    import socketserver
    import threading

    class Answer(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            model = json.loads(self.rfile.read(length))["model"]
            self.wfile.write(RAW_ANSWERS[model])

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("raw")
    model = {"name": "*", "provider": "openai-chat", "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1", **LIMITS}
    gw = Gateway({"models": [model], "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()
    server.shutdown()


def test_a_body_without_a_length_is_read_to_the_close(raw_upstream):
    status, payload, _ = _post(raw_upstream, "until-close", streaming=False)
    assert status == 200, payload
    check_response(payload)
    assert payload["output"][0]["content"][0]["text"] == "Read to the close."


@pytest.mark.parametrize("model", ["garbage", "half-headers"])
def test_an_answer_that_is_not_http_is_a_502(raw_upstream, model):
    status, payload, took = _post(raw_upstream, model, streaming=False)
    assert status == 502, payload
    assert_envelope(payload, code="upstream_unreachable")
    assert took < 5
