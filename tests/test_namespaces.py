"""`namespace` tools (function and custom tools grouped under a name, as the Codex CLI sends
them) on every provider, and the per-model policy for hosted tools a provider cannot run."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import WEATHER, create, stream
from providers import models

CRM = {"type": "namespace", "name": "crm", "description": "Customer tools.", "tools": [WEATHER, {"type": "custom", "name": "note"}]}


@pytest.mark.parametrize("model", models("text"))
def test_a_namespace_is_offered_under_names_that_cannot_collide(multi, fake_chat, fake_anthropic, fake_gemini, fake_responses, model):
    body = create(multi, model=model, input="x", tools=[CRM, {**WEATHER, "name": "crm_get_weather"}])
    fake = {"mock": fake_chat, "claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    offered = json.dumps(fake.last())
    assert "crm__get_weather" in offered and "crm__note" in offered and "crm_get_weather" in offered
    assert body["tools"][0] == CRM  # echoed as sent


def test_calls_come_back_with_namespace_and_name_and_go_back_upstream_the_same(multi, fake_chat):
    events = stream(multi, model="mock-namespaced-call", input="Weather?", tools=[CRM])
    call = events[-1]["response"]["output"][0]
    assert (call["type"], call["namespace"], call["name"], call["arguments"]) == ("function_call", "crm", "get_weather", '{"city": "Oslo"}')
    added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
    assert added["namespace"] == "crm" and added["name"] == "get_weather"
    replay = [{"role": "user", "content": "Weather?"}, call, {"type": "function_call_output", "call_id": call["call_id"], "output": "cold"}]
    create(multi, model="chat", input=replay, tools=[CRM])
    assistant = next(m for m in fake_chat.last()["messages"] if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["function"]["name"] == "crm__get_weather"
    listed = multi.responses.input_items.list(events[-1]["response"]["id"])  # stored items validate too
    assert listed.data


def test_a_name_clash_with_a_namespaced_tool_is_a_400(multi):
    with pytest.raises(openai.BadRequestError) as clash:
        multi.responses.create(model="chat", input="x", tools=[CRM, {**WEATHER, "name": "crm__get_weather"}])
    assert clash.value.body["param"] == "tools"


def test_the_hosted_tools_policy_is_per_model(fake_chat, tmp_path):
    base = chat_models(fake_chat)[1]  # "chat"
    models = [{**base, "name": "drops", "hosted_tools": "drop"}, {**base, "name": "refuses", "hosted_tools": "refuse"}]
    gw = Gateway({"models": models, "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path).start()
    try:
        client = sdk(gw)
        interpreter = {"type": "code_interpreter", "container": {"type": "auto"}}
        raw = client.responses.with_raw_response.create(model="drops", input="x", tools=[interpreter])
        assert "code_interpreter" in raw.headers["x-rejoinder-warning"] and "tools" not in fake_chat.last()
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="refuses", input="x", tools=[{"type": "web_search"}])
        assert refused.value.body["param"] == "tools[0].type"
    finally:
        gw.stop()
    assert "code_interpreter) was left out" in gw.logs()
