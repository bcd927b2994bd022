"""Bad input is always a 4xx in OpenAI's envelope: never a 5xx, on SQLite and PostgreSQL.

A fixed seed's worth of generated hostile requests (`hostile.py`; `bench/hostile.py` runs a
longer one), then the byte-level cases one by one, each naming what it guards against.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket

import pytest
from conftest import chat_models
from gateway import Gateway
from helpers import assert_envelope, post_raw
from hostile import requests, send, verdict


def test_generated_hostile_requests_never_get_a_5xx(store_gateway):
    connection = http.client.HTTPConnection("127.0.0.1", store_gateway.port, timeout=30)
    wrong, statuses = [], {}
    for method, path, headers, body in requests(seed=20261127, count=10_000):
        try:
            status, content_type, raw = send(connection, method, path, headers, body)
        except (http.client.HTTPException, ConnectionError):  # the gateway may close after a 4xx
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", store_gateway.port, timeout=30)
            status, content_type, raw = send(connection, method, path, headers, body)
        statuses[status] = statuses.get(status, 0) + 1
        problem = verdict(status, content_type, raw)
        if problem:
            wrong.append(f"{method} {path} {body[:200] if body else b''!r}: {problem}")
    assert not wrong, f"{len(wrong)} wrong answers, first: " + "\n".join(wrong[:5])
    assert statuses.get(400, 0) > 500 and statuses.get(200, 0) > 100, statuses  # the mix reaches both sides


def _post(gw: Gateway, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    status, _, payload = post_raw(gw, "POST", "/v1/responses", body, {"Content-Type": "application/json", **(headers or {})})
    return status, payload


DEEP_SCHEMA = {"type": "object"}
for _ in range(150):
    DEEP_SCHEMA = {"type": "object", "properties": {"a": DEEP_SCHEMA}}


@pytest.mark.parametrize(
    "body, param, code",
    [
        (
            b'{"model": "chat", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
            None,
            "nesting_too_deep",
        ),
        (
            json.dumps({"model": "chat", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": DEEP_SCHEMA}]}).encode(),
            "tools",
            "nesting_too_deep",
        ),
        (b'{"model": "chat", "input": "x", "max_output_tokens": 123456789012345678901234567890}', "max_output_tokens", "invalid_value"),
        (
            b'{"model": "chat", "input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "f", "x": 123456789012345678901234567890}}',
            "tool_choice",
            "invalid_value",
        ),
        (b'{"model": "chat", "input": "\xff\xfe"}', None, "invalid_json"),
        (b'{"model": "chat", "input": [{"type": ["function_call"]}]}', "input[0].type", None),
        (b'{"model": "chat", "input": "x", "tools": [{"type": {"a": 1}}]}', "tools[0].type", "unsupported_value"),
        (b'{"model": "chat", "input": "x", "tool_choice": {"type": ["file_search"]}}', "tool_choice.type", None),
        (b'{"model": "chat", "input": [{"role": "user", "content": "x", "id": "' + b"a" * 65 + b'"}]}', "input[0].id", "invalid_value"),
        (b'{"model": "chat", "input": [{"role": "user", "content": "x", "id": "a\\u0000b"}]}', "input[0].id", "invalid_value"),
        (b'{"model": "chat", "input": [{"type": "web_search_call", "id": ["x"], "status": "completed"}]}', "input[0].id", "invalid_value"),
        (b'{"model": "chat", "input": "x", "previous_response_id": "resp_\\u0000"}', "previous_response_id", "invalid_value"),
    ],
)
def test_byte_level_cases_are_400s_naming_what_is_wrong(store_gateway, body, param, code):
    status, payload = _post(store_gateway, body)
    assert status == 400, payload
    assert_envelope(payload, param=param)
    if code is not None:
        assert payload["error"]["code"] == code


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/responses/resp_%00"),
        ("DELETE", "/v1/responses/resp_%00"),
        ("GET", "/v1/responses/" + "a" * 65),
        ("GET", "/v1/responses/resp_%00/input_items"),
    ],
)
def test_ids_no_database_could_hold_are_not_found(store_gateway, method, path):
    status, _, payload = post_raw(store_gateway, method, path)
    assert status == 404, payload
    assert_envelope(payload, code="not_found")


def test_a_nul_cursor_is_a_400(store_gateway):
    status, _, payload = post_raw(store_gateway, "GET", "/v1/responses/resp_1/input_items?after=%00")
    assert status == 400
    assert_envelope(payload, param="after")


def test_a_corrupt_gzip_body_is_a_400(store_gateway):
    for body in (b"\x1f\x8b\x08garbage", gzip.compress(b'{"model": "chat", "input": "hi"}')[:20]):
        status, payload = _post(store_gateway, body, {"Content-Encoding": "gzip"})
        assert status == 400, payload
        assert_envelope(payload)
    status, payload = _post(store_gateway, gzip.compress(b'{"model": "chat", "input": "hi"}'), {"Content-Encoding": "gzip"})
    assert status == 200 and payload["status"] == "completed"


def test_an_authorization_header_that_is_not_utf8_is_a_401(fake_chat, tmp_path):
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": "rk-master-key-5678"}, tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", gw.port)) as sock:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3(\r\nConnection: close\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401"), raw
        assert_envelope(json.loads(body), code="invalid_api_key")
    finally:
        gw.stop()
