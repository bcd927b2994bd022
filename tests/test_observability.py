"""What operators watch: request ids, `/metrics` (parsed with prometheus_client's own parser,
checked against the requests made, with one worker and with two), the JSON access log, and
upstream failures in the log."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, stream, wait_until
from prometheus_client.parser import text_string_to_metric_families


def scrape(gw: Gateway, key: str | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample on `/metrics`, by name and labels."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(gw.url + "/metrics", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value for family in text_string_to_metric_families(answer.text) for sample in family.samples
    }


def requests_made(samples: dict, **labels: str) -> float:
    return sum(value for (name, found), value in samples.items() if name == "rejoinder_requests_total" and set(labels.items()) <= set(found))


def test_every_answer_carries_a_request_id(gateway, client):
    answers = [
        httpx.post(gateway.url + "/v1/responses", json={"model": "mock-text", "input": "Hi"}),
        httpx.post(gateway.url + "/v1/responses", json={"model": "nope", "input": "Hi"}),
        httpx.get(gateway.url + "/v1/nowhere"),
        httpx.get(gateway.url + "/health"),
    ]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert all(id_.startswith("req_") for id_ in ids) and len(set(ids)) == 4
    with httpx.stream(
        "POST", gateway.url + "/v1/responses", json={"model": "mock-text", "input": "Hi", "stream": True}, headers={"x-request-id": "trace-123"}
    ) as streamed:
        assert streamed.headers["x-request-id"] == "trace-123"  # a usable id the client chose is kept


def test_metrics_count_what_happened(gateway, client, fake_chat):
    before = scrape(gateway)
    create(client, model="mock-text", input="Hi")
    create(client, model="mock-text", input="Hi")
    stream(client, model="mock-text", input="Hi")
    with pytest.raises(Exception):
        client.responses.create(model="mock-error-500", input="Hi")
    after = scrape(gateway)

    def grew(**labels: str) -> float:
        return requests_made(after, **labels) - requests_made(before, **labels)

    assert grew(model="mock-*", mode="json", status="200") == 2 and grew(model="mock-*", mode="sse", status="200") == 1
    assert grew(model="mock-*", status="502") == 1
    tokens = ("rejoinder_tokens_total", (("direction", "input"), ("model", "mock-*")))
    assert after[tokens] - before.get(tokens, 0) == 3 * 19  # the fake reports 19 prompt tokens a call
    errors = [key for key in after if key[0] == "rejoinder_upstream_errors_total" and ("code", "upstream_error") in key[1]]
    assert errors and sum(after[key] - before.get(key, 0) for key in errors) == 1
    first = ("rejoinder_time_to_first_token_seconds_count", (("model", "mock-*"),))
    assert after[first] - before.get(first, 0) == 3
    assert ("rejoinder_background_queued", ()) in after and ("rejoinder_gateway_overhead_seconds_bucket", (("le", "0.001"), ("model", "mock-*"))) in after


def test_metrics_add_up_over_workers_and_upstream_failures_are_logged(fake_chat, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": "sk-master-for-metrics"}
    gw = Gateway(config, tmp_path, workers=2, args=("--access-log",)).start()
    try:
        client = sdk(gw, "sk-master-for-metrics")
        assert httpx.get(gw.url + "/metrics").status_code == 401  # behind the master key when there is one
        for _ in range(20):
            create(client, model="mock-text", input="Hi")
        for _ in range(6):  # each scrape may reach either worker: every one sees all twenty
            assert requests_made(scrape(gw, "sk-master-for-metrics"), model="mock-*", mode="json") == 20
        with pytest.raises(Exception):
            client.responses.create(model="unreachable", input="Hi")
        logs = gw.logs()
        assert "WARNING rejoinder.upstream: upstream call to http://127.0.0.1:9/v1/chat/completions failed: 502 upstream_unreachable" in logs
        lines = [json.loads(line.split("rejoinder.access: ", 1)[1]) for line in logs.splitlines() if "rejoinder.access: " in line]
        turns = [line for line in lines if line.get("mode") == "json" and line["status"] == 200]
        assert len(turns) == 20 and all(line["model"] == "mock-*" and line["input_tokens"] == 19 and line["request_id"].startswith("req_") for line in turns)
        assert "sk-master-for-metrics" not in logs and "Hi" not in "".join(json.dumps(line) for line in lines)
    finally:
        gw.stop()


def usage_today(gw: Gateway, model: str = "mock-*") -> dict:
    answer = httpx.get(gw.url + "/v1/organization/usage", params={"group_by": "model"})
    assert answer.status_code == 200, answer.text
    rows = [row for row in answer.json()["data"] if row["model"] == model]
    return rows[0] if rows else dict.fromkeys(("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "upstream_calls"), 0)


def test_usage_is_recorded_by_day_and_model(store_gateway):
    client = sdk(store_gateway)
    before = usage_today(store_gateway)
    for _ in range(3):
        create(client, model="mock-text", input="Hi")
    with pytest.raises(Exception):
        client.responses.create(model="mock-error-500", input="Hi")
    expected = {
        "requests": before["requests"] + 4,
        "errors": before["errors"] + 1,
        "input_tokens": before["input_tokens"] + 57,
        "output_tokens": before["output_tokens"] + 30,
        "cached_tokens": before["cached_tokens"] + 12,
        "upstream_calls": before["upstream_calls"] + 3,
    }
    assert wait_until(lambda: {name: usage_today(store_gateway)[name] for name in expected} == expected)  # written within a few seconds
    answer = httpx.get(store_gateway.url + "/v1/organization/usage", params={"group_by": "weekday"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "group_by"
    rows = httpx.get(store_gateway.url + "/v1/organization/usage").json()["data"]
    counts = {"requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "web_searches", "upstream_calls", "cost"}
    assert all(set(row) == {"day", "model", *counts} for row in rows) and all(row["cost"] == 0 for row in rows)  # no price: free


def test_usage_adds_up_over_instances(fake_chat, fresh_postgres_url, tmp_path):
    config = {"models": chat_models(fake_chat), "database_url": fresh_postgres_url}
    folders = [tmp_path / f"g{n}" for n in range(2)]
    for folder in folders:
        folder.mkdir()
    gateways = [Gateway(config, folder).start() for folder in folders]
    try:
        for gw in gateways:
            client = sdk(gw)
            for _ in range(5):
                create(client, model="mock-text", input="Hi")
        assert wait_until(lambda: usage_today(gateways[0])["requests"] == 10 == usage_today(gateways[1])["requests"])
    finally:
        for gw in gateways:
            gw.stop()
