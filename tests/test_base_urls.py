"""Base URLs as each provider's own SDK takes them: a bare host works for Anthropic and Gemini
(the version segment is added), and an upstream that answers 404 says which URL was called."""

from __future__ import annotations

import json

from conftest import ANTHROPIC_KEY, GEMINI_KEY, sdk
from gateway import Gateway
from helpers import assert_envelope, create, post_raw


def test_bare_hosts_and_versioned_urls_both_work(fake_anthropic, fake_gemini, tmp_path):
    models = [
        {"name": "claude-*", "provider": "anthropic", "base_url": fake_anthropic.url, "api_key": ANTHROPIC_KEY},
        {"name": "gemini-*", "provider": "gemini", "base_url": fake_gemini.url + "/", "api_key": GEMINI_KEY},
        {"name": "versioned-claude-text", "provider": "anthropic", "base_url": fake_anthropic.url + "/v1", "upstream_model": "claude-text"},
    ]
    gw = Gateway({"models": models, "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path).start()
    try:
        client = sdk(gw)
        assert create(client, model="claude-text", input="hi")["status"] == "completed"
        assert fake_anthropic.paths[-1] == "/v1/messages"
        assert create(client, model="gemini-text", input="hi")["status"] == "completed"
        assert fake_gemini.paths[-1] == "/v1beta/models/gemini-text:generateContent"
        assert create(client, model="versioned-claude-text", input="hi")["status"] == "completed"
        assert fake_anthropic.paths[-1] == "/v1/messages"
    finally:
        gw.stop()


def test_a_404_from_the_upstream_names_the_url_called(fake_anthropic, tmp_path):
    models = [{"name": "claude-text", "provider": "anthropic", "base_url": fake_anthropic.url + "/wrong/v1", "api_key": ANTHROPIC_KEY}]
    gw = Gateway({"models": models, "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path).start()
    try:
        status, _, payload = post_raw(gw, "POST", "/v1/responses", json.dumps({"model": "claude-text", "input": "hi"}).encode())
        assert status == 502, payload
        assert_envelope(payload, code="upstream_error")
        assert f"404 Not Found for POST {fake_anthropic.url}/wrong/v1/messages" in payload["error"]["message"]
    finally:
        gw.stop()
    assert f"upstream answered 404 for POST {fake_anthropic.url}/wrong/v1/messages" in gw.logs()
