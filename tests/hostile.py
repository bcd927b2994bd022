"""Hostile requests, generated from a seed: valid bodies with one part swapped for something
a careless or malicious client might send, broken bytes, and ids no database would take.

Shared by `test_hostile_input.py` (a fixed seed, in `make test`) and `bench/hostile.py` (a
longer run that prints figures). Every request must get a 2xx or a 4xx in OpenAI's envelope:
never a 5xx, a hang or a body of another shape.
"""

from __future__ import annotations

import gzip
import http.client
import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
VALID = [
    {"model": "chat", "input": "hi"},
    {"model": "chat", "input": "hi", "stream": True},
    {"model": "chat", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "instructions": "Be brief."},
    {
        "model": "mock-tool-single",
        "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}', "id": "fc_client"},
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
    },
    {
        "model": "chat",
        "input": "x",
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
    },
    {"model": "chat", "input": "x", "reasoning": {"effort": "low", "summary": "auto"}, "include": ["reasoning.encrypted_content"], "max_output_tokens": 50},
    {"model": "chat", "input": [{"type": "reasoning", "summary": [], "id": "rs_1"}, {"role": "user", "content": "go"}], "metadata": {"k": "v"}},
    {"model": "chat", "input": [{"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}}, "x"]},
    {"model": "chat", "input": "x", "previous_response_id": "resp_0000000000000000000000000000000000000000000000000", "store": False},
    {"model": "chat", "input": [{"type": "item_reference", "id": "msg_missing"}]},
]


def _deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    2**64,
    2**70,
    -(2**64),
    1e308,
    "",
    "\x00",
    "a\x00b",
    "x" * 65,
    "x" * 5000,
    "é" * 40,
    [],
    {},
    [None],
    {"type": ["list"]},
    {"type": {"an": "object"}},
    {"type": 7},
    [{"type": ["list"]}],
    _deep(70),
    _deep(300),
    _deep(80, 2**70),
    list(range(300)),
]

# (An id of thousands of characters would make a request line longer than aiohttp's 8 KiB,
# which aiohttp itself answers in plain text before the app sees it: see the README.)
_BAD_IDS = ["", "\x00", "resp_\x00", "a" * 65, "a" * 2000, "é", "resp_ok\n", " ", "resp_%00", "../../etc", "'; DROP TABLE responses; --", "\ud7ff"]


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, entry in value.items():
            yield from _paths(entry, (*path, key))
    elif isinstance(value, list):
        for i, entry in enumerate(value):
            yield from _paths(entry, (*path, i))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


def _delete(value: Any, path: tuple) -> Any:
    if len(path) == 1:
        copy = dict(value) if isinstance(value, dict) else list(value)
        del copy[path[0]]
        return copy
    head = path[0]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _delete(value[head], path[1:])
    return copy


def _encode(value: Any, rng: random.Random) -> bytes:
    return json.dumps(value, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _mutated_body(rng: random.Random) -> bytes:
    body = rng.choice(VALID)
    paths = list(_paths(body))
    path = rng.choice(paths[1:])
    roll = rng.random()
    if roll < 0.75:
        body = _replace(body, path, rng.choice(HOSTILE_VALUES))
    elif roll < 0.85:
        body = _delete(body, path)
    else:
        parent = _replace(body, path[:-1], {}) if rng.random() < 0.2 else body
        body = {**parent, rng.choice(["tool_choice", "tools", "text", "extra_field", "stream_options", "conversation", "prompt"]): rng.choice(HOSTILE_VALUES)}
    return _encode(body, rng)


def _broken_bytes(rng: random.Random) -> bytes:
    raw = bytearray(_encode(rng.choice(VALID), rng))
    roll = rng.random()
    if roll < 0.3:
        return bytes(raw[: rng.randrange(len(raw))])
    if roll < 0.6:
        raw[rng.randrange(len(raw))] = rng.choice([0x00, 0xFF, 0xC3, 0xED, 0x80, 0x22, 0x5C])
        return bytes(raw)
    if roll < 0.8:
        at = raw.index(b'"hi"') + 2 if b'"hi"' in raw else len(raw) // 2
        return bytes(raw[:at] + rng.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3", b"\\ud800", b"\\u0000"]) + raw[at:])
    return b"[" * rng.choice([200, 1000, 5000]) + b"]" * rng.choice([0, 5000])


def requests(seed: int, count: int) -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
    """`(method, path, headers, body)` for `count` hostile requests."""
    rng = random.Random(seed)
    json_headers = {"Content-Type": "application/json"}
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            yield "POST", "/v1/responses", json_headers, _mutated_body(rng)
        elif roll < 0.82:
            yield "POST", "/v1/responses", json_headers, _broken_bytes(rng)
        elif roll < 0.85:
            yield (
                "POST",
                "/v1/responses",
                {**json_headers, "Content-Encoding": "gzip"},
                rng.choice([b"\x1f\x8b\x08garbage", gzip.compress(b'{"model": "chat", "input": "hi"}')[:-6]]),
            )
        else:
            bad = quote(rng.choice(_BAD_IDS), safe="")
            method, path = rng.choice(
                [
                    ("GET", f"/v1/responses/{bad}"),
                    ("DELETE", f"/v1/responses/{bad}"),
                    ("GET", f"/v1/responses/{bad}/input_items"),
                    ("GET", f"/v1/responses/resp_1/input_items?after={bad}"),
                    ("GET", f"/v1/responses/resp_1/input_items?limit={bad}&order={bad}"),
                    ("GET", f"/v1/responses/{bad}?include[]={bad}"),
                    ("GET", f"/v1/models/{bad}"),
                ]
            )
            yield method, path, {}, None


def send(connection: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, str, bytes]:
    """One request on a kept-alive connection: status, content type, body."""
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheader("Content-Type", ""), response.read()


def verdict(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with an answer to a hostile request, or None when it is right."""
    if status >= 500:
        return f"HTTP {status}: {body[:300]!r}"
    if content_type.startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith(b"data: ")]
        if not events or events[-1]["type"] not in ("response.completed", "response.incomplete", "response.failed"):
            return f"stream without a terminal event: {body[-300:]!r}"
        if any(e["type"] == "error" and e.get("code") == "server_error" for e in events):
            return f"stream failed inside the gateway: {body[-300:]!r}"
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return f"HTTP {status} body is not JSON: {body[:300]!r}"
    if status >= 400:
        error = payload.get("error") if isinstance(payload, dict) else None
        if set(payload) != {"error"} or not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
            return f"HTTP {status} without the envelope: {body[:300]!r}"
    elif isinstance(payload, dict) and payload.get("object") == "response" and payload.get("status") == "failed":
        return f"failed response: {body[:300]!r}"
    return None
