"""One client's bad request never fails another's: ids no database could hold are refused at
decode, and a batch the database refuses anyway is written again member by member, so only
the bad member fails. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import post_raw

from rejoinder.protocol.response import Response
from rejoinder.store.repository import Store
from rejoinder.store.schema import ItemRow, Tenant

BAD_BODIES = [
    {"model": "chat", "input": [{"role": "user", "content": "x", "id": "a" * 65}]},
    {"model": "chat", "input": [{"role": "user", "content": "x", "id": "nul\u0000id"}]},
    {"model": "chat", "input": [{"type": "web_search_call", "id": ["a", "list"], "status": "completed"}]},
    {"model": "chat", "input": "x", "previous_response_id": "resp_" + "f" * 80},
    {"model": "chat", "input": [{"type": "item_reference", "id": "\u0000"}]},
]


def test_a_mixed_blast_fails_no_innocent_request(store_gateway):
    bodies = [({"model": "chat", "input": f"ordinary {i}", "stream": i % 2 == 0}, True) for i in range(290)]
    bodies += [(BAD_BODIES[i % len(BAD_BODIES)], False) for i in range(10)]
    bodies = bodies[::3] + bodies[1::3] + bodies[2::3]  # the bad ones spread through the blast

    def send(entry):
        body, ordinary = entry
        return ordinary, post_raw(store_gateway, "POST", "/v1/responses", json.dumps(body).encode(), {"Content-Type": "application/json"})

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(send, bodies))
    innocent_failures = [payload for ordinary, (status, _, payload) in results if ordinary and (status != 200 or _final(payload)["status"] != "completed")]
    assert innocent_failures == []
    assert all(status == 400 for ordinary, (status, _, _) in results if not ordinary)
    for ordinary, (_, _, payload) in results[:60]:
        if ordinary:  # stored, and readable again
            status, _, stored = post_raw(store_gateway, "GET", f"/v1/responses/{_final(payload)['id']}")
            assert status == 200 and stored["status"] == "completed"


def _final(payload: dict) -> dict:
    return payload["events"][-1]["response"] if "events" in payload else payload


def _response(i: int) -> Response:
    return Response(id=f"resp_isolated{i:04d}", created_at=1, status="completed", model="m")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A database and an item id it refuses to store: SQLite cannot bind a list, PostgreSQL
    takes no NUL in text."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/isolated.db", ["a", "list"]
    return request.getfixturevalue("fresh_postgres_url"), "nul\x00id"


def test_the_writer_retries_a_failed_batch_member_by_member(database, caplog):
    url, bad_id = database
    store = Store(url)
    store.migrate()

    async def blast() -> list:
        saves = []
        for i in range(40):
            rows = [ItemRow(f"resp_isolated{i:04d}", "output", 0, bad_id if i == 37 else f"msg_{i}", b"{}")]
            saves.append(store.save(_response(i), b"{}", Tenant("proj_default"), rows))
        return await asyncio.gather(*saves, return_exceptions=True)

    try:
        with caplog.at_level(logging.ERROR, logger="rejoinder.store"):
            outcomes = asyncio.run(blast())
        failed = [i for i, outcome in enumerate(outcomes) if outcome is not None]
        assert failed == [37]
        assert "resp_isolated0037" in caplog.text
        stored = [i for i in range(40) if asyncio.run(store.get(f"resp_isolated{i:04d}", "proj_default")) is not None]
        assert stored == [i for i in range(40) if i != 37]
    finally:
        store.close()
