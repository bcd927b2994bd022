"""Routing: several deployments by weight, retries before the first byte, cooldowns after an
upstream 429, fallbacks, and `no_accounts`, against the fake Chat Completions server."""

from __future__ import annotations

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import assert_envelope, create, stream
from test_observability import scrape


@pytest.fixture(scope="module")
def routed(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("routed")
    base = f"http://127.0.0.1:{fake_chat.port}/v1"

    def to(upstream: str, weight: float = 1.0) -> dict:
        return {"provider": "openai-chat", "base_url": base, "upstream_model": upstream, "weight": weight}

    models = chat_models(fake_chat) + [
        {"name": "pool", "deployments": [to("error-500"), to("text")]},
        {"name": "limited", "deployments": [to("error-429", 1000), to("text", 0.001)]},
        {"name": "only-limited", "deployments": [to("error-429")]},
        {"name": "down", "provider": "openai-chat", "base_url": "http://127.0.0.1:9/v1", "fallbacks": ["mock-text"]},
        {"name": "breaks-midstream", "deployments": [to("midstream-error", 1000), to("text", 0.001)]},
        {"name": "spread", "deployments": [to("spread-a"), to("spread-b"), to("spread-c")]},
    ]
    gw = Gateway({"models": models, "database_url": f"sqlite:///{workdir}/r.db"}, workdir).start()
    yield gw
    gw.stop()


def calls_of(fake_chat, upstream: str) -> int:
    return sum(request["model"] == upstream for request in fake_chat.requests)


def test_a_failing_deployment_is_passed_over(routed, fake_chat):
    client = sdk(routed)
    failed_before = calls_of(fake_chat, "error-500")
    for _ in range(20):
        assert create(client, model="pool", input="Hi")["status"] == "completed"
    events = stream(client, model="pool", input="Hi")
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["model"] == "pool"
    assert calls_of(fake_chat, "error-500") > failed_before  # it was tried, and its failures never reached a client
    assert scrape(routed)[("rejoinder_upstream_retries_total", (("model", "pool"),))] >= 1


def test_a_rate_limited_deployment_cools_down(routed, fake_chat):
    client = sdk(routed)
    before = calls_of(fake_chat, "error-429")
    assert create(client, model="limited", input="Hi")["status"] == "completed"
    assert calls_of(fake_chat, "error-429") == before + 1  # tried first (its weight), then the other
    for _ in range(5):
        assert create(client, model="limited", input="Hi")["status"] == "completed"
    assert calls_of(fake_chat, "error-429") == before + 1  # cooling for its Retry-After (7 s): left out


def test_one_prompt_cache_key_keeps_to_one_deployment(routed, fake_chat):
    """Its turns find the prompt cache its earlier turns filled; other keys spread by weight."""
    client = sdk(routed)

    def served(key: str) -> str:
        create(client, model="spread", input="Hi", prompt_cache_key=key)
        return fake_chat.last()["model"]

    assert len({served("session-1") for _ in range(8)}) == 1
    assert {served(f"session-{n}") for n in range(24)} == {"spread-a", "spread-b", "spread-c"}


def test_no_deployment_left_is_a_503(routed):
    client = sdk(routed)
    with pytest.raises(openai.RateLimitError):  # the last one's 429 is the answer
        client.responses.create(model="only-limited", input="Hi")
    with pytest.raises(openai.InternalServerError) as none_left:
        client.responses.create(model="only-limited", input="Hi")
    assert none_left.value.status_code == 503
    assert_envelope(none_left.value.response.json(), code="no_accounts")
    assert 1 <= int(none_left.value.response.headers["retry-after"]) <= 7


def test_fallbacks_answer_when_the_model_cannot(routed, fake_chat):
    client = sdk(routed)
    body = create(client, model="down", input="Hi")
    assert body["status"] == "completed" and body["model"] == "down" and fake_chat.last()["model"] == "mock-text"
    assert "upstream call to http://127.0.0.1:9/v1/chat/completions failed" in routed.logs()


def test_never_retried_once_streaming_began(routed, fake_chat):
    client = sdk(routed)
    before = len(fake_chat.requests)
    events = stream(client, model="breaks-midstream", input="Hi")
    assert events[-1]["type"] == "response.failed" and len(fake_chat.requests) == before + 1


@pytest.mark.parametrize(
    ("model", "complaint"),
    [
        ({"name": "x", "provider": "openai-chat", "deployments": [{"provider": "openai-chat"}]}, "either provider"),
        ({"name": "x"}, "either provider"),
        ({"name": "x", "deployments": [{"provider": "openai-chat", "weight": 0}]}, r"deployments\[0\]\.weight: Expected `float` > 0"),
        ({"name": "x", "deployments": [{"provider": "local"}]}, "a deployment needs a remote provider"),
        ({"name": "x", "provider": "openai-chat", "fallbacks": ["nowhere"]}, "not configured: nowhere"),
    ],
)
def test_routing_configs_that_cannot_work_are_refused(tmp_path, model, complaint):
    import yaml

    from rejoinder.config import ConfigError, load

    path = tmp_path / "rejoinder.yaml"
    path.write_text(yaml.safe_dump({"models": [model]}))
    with pytest.raises(ConfigError, match=complaint):
        load(str(path), {})
