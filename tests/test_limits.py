"""Rate limits per key and per project: shared exactly by instances through the real Redis, kept
in memory without it; 429 `rate_limit_exceeded` with `Retry-After`, OpenAI's `x-ratelimit-*`
headers on what is admitted, the refusals on `/metrics`, and usage recorded per key."""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, wait_until
from sockets import Socket, final
from spec import check_error, check_response
from test_observability import scrape
from test_projects import MASTER, Admin


def _post(gw: Gateway, key: str, model: str = "mock-text") -> httpx.Response:
    answer = httpx.post(gw.url + "/v1/responses", json={"model": model, "input": "Hi"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    if answer.status_code == 200:
        check_response(answer.json())
    else:
        check_error(answer.json())
    return answer


def _clear_of_the_minute_edge() -> None:
    """A test that fills a minute's window starts well inside one."""
    if time.time() % 60 > 52:
        time.sleep(61 - time.time() % 60)


def priced(fake_chat) -> list[dict]:
    """The test models, `mock-*` at a tenth of a cent a token."""
    models = chat_models(fake_chat)
    models[0]["price"] = {"input": 1000.0, "output": 1000.0}
    return models


@pytest.fixture(scope="module")
def shared(fake_chat, postgres_url, redis_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limits")
    config = {"models": priced(fake_chat), "database_url": postgres_url, "master_key": MASTER, "redis_url": redis_url}
    first, second = Gateway(config, workdir).start(), Gateway(config, workdir).start()
    yield first, second
    first.stop()
    second.stop()


def test_two_instances_share_a_keys_requests_per_minute_exactly(shared):
    admin = Admin(shared[0])
    key = admin.key(admin.project("Limited"), rpm=5)["value"]
    _clear_of_the_minute_edge()
    answers = [_post(shared[i % 2], key) for i in range(10)]
    assert [answer.status_code for answer in answers] == [200] * 5 + [429] * 5
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert all(answer.headers["x-ratelimit-limit-requests"] == "5" for answer in answers)
    refused = answers[5]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded" and refused.json()["error"]["type"] == "requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" not in refused.headers  # no token limit on this key
    samples = scrape(shared[0], MASTER)
    assert sum(value for (name, _), value in samples.items() if name == "rejoinder_rate_limited_total") >= 2  # this instance's refusals


def test_a_projects_limit_binds_all_its_keys(shared):
    admin = Admin(shared[0])
    project = admin.project("Pooled", rpm=3)
    keys = [admin.key(project)["value"] for _ in range(2)]
    _clear_of_the_minute_edge()
    statuses = [_post(shared[i % 2], keys[i % 2]).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_budget_is_spent_at_the_models_price_across_instances(shared):
    admin = Admin(shared[0])
    project = admin.project("Budgeted")
    key = admin.key(project, budget=0.01, budget_period="day")["value"]  # ten tokens' worth
    queued = sdk(shared[0], key).responses.create(model="mock-text", input="Hi", background=True)  # 29 tokens: the budget is spent …
    assert wait_until(lambda: sdk(shared[1], key).responses.retrieve(queued.id).status == "completed", 10)  # … when the run ends
    time.sleep(0.3)  # the turn's spending reaches Redis within _SPEND_DELAY
    refused = _post(shared[1], key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
    assert "$0.01 a day" in refused.json()["error"]["message"] and int(refused.headers["Retry-After"]) <= 86400
    free = admin.key(project)["value"]  # another key of the project, with no budget of its own
    assert _post(shared[0], free).status_code == 200


def test_tokens_per_minute_in_memory_and_usage_per_key(fake_chat, tmp_path):
    config = {"models": priced(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": MASTER}
    gw = Gateway(config, tmp_path, args=("--access-log",)).start()
    try:
        admin = Admin(gw)
        created = admin.key(admin.project("Thrifty"), tpm=1)
        _clear_of_the_minute_edge()
        first = _post(gw, created["value"])
        assert first.status_code == 200 and first.headers["x-ratelimit-limit-tokens"] == "1"
        refused = _post(gw, created["value"])  # the first turn's tokens filled the minute
        assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
        assert "TPM" in refused.json()["error"]["message"]
        budgeted = admin.key(admin.project("Thrifty too", budget=0.01))["value"]
        assert _post(gw, budgeted).status_code == 200
        assert _post(gw, budgeted).json()["error"]["code"] == "insufficient_quota"

        def recorded() -> list:
            report = httpx.get(gw.url + "/v1/organization/usage?group_by=key_id&group_by=project", headers={"Authorization": f"Bearer {MASTER}"}).json()
            return [row for row in report["data"] if row["key_id"] == created["id"]]

        assert wait_until(lambda: recorded() and recorded()[0]["requests"] == 2, 10)
        row = recorded()[0]
        assert row["errors"] == 1 and row["input_tokens"] > 0 and row["project"].startswith("proj_")
        lines = [line for line in gw.logs().splitlines() if created["id"] in line and '"path":"/v1/responses"' in line]
        assert len(lines) == 2 and created["value"] not in gw.logs()
    finally:
        gw.stop()


def test_each_websocket_turn_is_a_request_of_its_key(shared):
    admin = Admin(shared[0])
    key = admin.key(admin.project("Socketed"), rpm=2)["value"]
    other = create(sdk(shared[0], admin.key(admin.project("Elsewhere"))["value"]), model="mock-text", input="Hi")
    _clear_of_the_minute_edge()
    with Socket(sdk(shared[1], key)) as socket:
        assert final(socket.turn(model="mock-text", input="Hi"))["status"] == "completed"
        unknown = socket.turn(model="mock-text", input="Go on", previous_response_id=other["id"])[-1]  # another project's: unknown
        assert unknown["type"] == "error" and unknown["status"] == 404 and unknown["error"]["code"] == "previous_response_not_found"
        refused = socket.turn(model="mock-text", input="Again")[-1]
        assert refused["type"] == "error" and refused["status"] == 429 and refused["error"]["code"] == "rate_limit_exceeded"
