"""A client cannot hold a connection or get an answer outside the envelope: a declared body
over `max_body_bytes` is a 413 before it is read, a body or headers that stop arriving end at
`client_timeout`, 500 slow-loris connections delay no one, and what aiohttp's parser refuses
is answered in OpenAI's envelope without quoting what was sent. A zstd body is read."""

from __future__ import annotations

import json
import socket
import time

import pytest
from backports import zstd
from conftest import chat_models
from gateway import Gateway
from helpers import assert_envelope, post_raw

MASTER = "rk-master-bounded-5678"
SECRET = "sk-proj-secret-that-must-not-echo-0123456789"


@pytest.fixture(scope="module")
def bounded_gateway(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bounded-requests")
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "master_key": MASTER, "max_body_bytes": 65536, "client_timeout": 1}
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


def _exchange(gw: Gateway, raw: bytes, wait: float = 10) -> tuple[bytes, float]:
    """Send `raw` on a fresh connection and read until the gateway closes it (or `wait` passes)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=wait) as sock:
        sock.sendall(raw)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer, time.monotonic() - started


def _envelope(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head, answer
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "length, status, code",
    [
        (999999999999, 413, "request_too_large"),  # over max_body_bytes: refused before a byte of it is read
        (100, 408, "request_timeout"),  # within it, but the rest never comes
    ],
)
def test_a_body_that_will_not_arrive_is_answered_at_once_or_at_client_timeout(bounded_gateway, length, status, code):
    head = f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MASTER}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    answer, took = _exchange(bounded_gateway, head.encode() + b'{"model": "chat",')
    got, payload = _envelope(answer)
    assert got == status
    assert_envelope(payload, code=code)
    assert took < 15  # closed after aiohttp's short lingering read, not held


def test_headers_that_stop_arriving_are_closed(bounded_gateway):
    answer, took = _exchange(bounded_gateway, b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bea", wait=30)
    assert answer == b"" and took < 10  # closed at client_timeout (1 s), long before the 30 s wait


def test_five_hundred_slow_loris_connections_delay_no_one(bounded_gateway):
    sockets = []
    try:
        for _ in range(500):
            sock = socket.create_connection(("127.0.0.1", bounded_gateway.port))
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        body = json.dumps({"model": "chat", "input": "hi"}).encode()
        for _ in range(5):
            status, _, payload = post_raw(
                bounded_gateway, "POST", "/v1/responses", body, {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}
            )
            assert status == 200 and payload["status"] == "completed"
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize(
    "raw, code",
    [
        (f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization {SECRET}\r\n\r\n", "invalid_request"),  # no colon: the line is quoted by aiohttp
        (f"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Key: {SECRET}" + "a" * 20000 + "\r\n\r\n", "invalid_request"),
        (f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nX-Key: {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\nzz{SECRET}\r\n", None),
        (f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Encoding: {SECRET}\r\nContent-Length: 2\r\n\r\n{{}}", None),
        (f"G\x01T /{SECRET} HTTP/1.1\r\nHost: x\r\n\r\n", "invalid_request"),
    ],
)
def test_what_the_parser_refuses_is_an_envelope_that_quotes_nothing(bounded_gateway, raw, code):
    answer, _ = _exchange(bounded_gateway, raw.encode())
    status, payload = _envelope(answer)
    assert 400 <= status < 500
    assert_envelope(payload, **({"code": code} if code else {}))
    assert SECRET.encode() not in answer and SECRET not in bounded_gateway.logs()


def test_a_zstd_body_is_read(bounded_gateway):
    body = zstd.compress(json.dumps({"model": "chat", "input": "hi"}).encode())
    headers = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json", "Content-Encoding": "zstd"}
    status, _, payload = post_raw(bounded_gateway, "POST", "/v1/responses", body, headers)
    assert status == 200 and payload["status"] == "completed"
