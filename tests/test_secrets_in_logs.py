"""Secrets never reach the log or an error, even when an upstream or a broken request quotes
them: with access logs on, at debug level."""

from __future__ import annotations

import json
import socket

from conftest import UPSTREAM_KEY, chat_models
from gateway import Gateway
from helpers import assert_envelope, post_raw

MASTER = "rk-master-secret-0123456789"


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return raw


def test_keys_never_reach_the_log_or_the_client(fake_chat, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": MASTER}
    gw = Gateway(config, tmp_path, args=("--log-level", "debug", "--access-log")).start()
    try:
        auth = {"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"}
        status, _, payload = post_raw(gw, "POST", "/v1/responses", b'{"model": "mock-echo-key", "input": "x"}', auth)
        assert status == 502, payload
        assert_envelope(payload, code="upstream_error")
        assert "request header: Bearer ***" in payload["error"]["message"]  # scrubbed whole, then cut
        assert UPSTREAM_KEY[:6] not in json.dumps(payload)
        # requests aiohttp cannot parse, quoting the master key in a broken header
        for broken in (
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode() + b"\x01\r\n\r\n",
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-" + MASTER.encode() + b" : y\r\n\r\n",
            b"GET /v1/models?" + MASTER.encode() + b" HTTP/1.1 junk\r\n\r\n",
        ):
            answer = _raw(gw.port, broken)
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request") and b'"error"' in answer and MASTER.encode() not in answer
        assert post_raw(gw, "GET", "/v1/models", headers=auth)[0] == 200
        post_raw(gw, "GET", f"/v1/models?key={MASTER}", headers=auth)  # a query string is never logged
    finally:
        gw.stop()
    logs = gw.logs()
    assert "refused a request that could not be parsed: BadHttpMessage (HTTP 400)" in logs  # by kind only
    assert '"method":"POST","path":"/v1/responses","status":502' in logs and '"path":"/v1/models","status":200' in logs  # the access log was on
    assert MASTER not in logs and MASTER[:12] not in logs
    assert UPSTREAM_KEY not in logs and UPSTREAM_KEY[:12] not in logs
