"""Every failure reaches the client in OpenAI's envelope with the right status."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import UPSTREAM_KEY
from helpers import assert_envelope, post_raw


@pytest.mark.parametrize(
    "body, param",
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"input": "hi"}', "model"),
        (b'{"model": 5, "input": "hi"}', "model"),
        (b'{"model": "chat", "input": 5}', "input"),
        (b'{"model": "chat"}', "input"),
        (b'{"model": "chat", "input": [{"role": "user", "content": 3}]}', "input[0].content"),
        (b'{"model": "chat", "input": [{"role": "wizard", "content": "x"}]}', "input[0].role"),
        (b'{"model": "chat", "input": [{"type": "function_call", "name": "f"}]}', "input[0].call_id"),
        (b'{"model": "chat", "input": "x", "temperature": 3}', "temperature"),
        (b'{"model": "chat", "input": "x", "top_p": "high"}', "top_p"),
        (b'{"model": "chat", "input": "x", "max_output_tokens": 0}', "max_output_tokens"),
        (b'{"model": "chat", "input": "x", "max_output_tokens": 15}', "max_output_tokens"),
        (b'{"model": "chat", "input": "x", "top_logprobs": 21}', "top_logprobs"),
        (b'{"model": "chat", "input": "x", "include": ["everything"]}', "include[0]"),
        (b'{"model": "chat", "input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}', "tools[0].type"),
        (b'{"model": "chat", "input": "x", "tools": [{"type": "function"}]}', "tools[0].name"),
        (b'{"model": "chat", "input": "x", "tool_choice": "sometimes"}', "tool_choice"),
        (b'{"model": "chat", "input": "x", "tool_choice": {"type": "function", "name": "nope"}}', "tool_choice"),
        (b'{"model": "chat", "input": "x", "tool_choice": "required"}', "tool_choice"),
        (b'{"model": "chat", "input": "x", "text": {"format": {"type": "json_schema", "name": "bad name!", "schema": {}}}}', "text.format.name"),
        (b'{"model": "chat", "input": "x", "metadata": {"k": 1}}', "metadata"),
        (b'{"model": "chat", "input": "x", "messages": []}', "messages"),
        (b'{"model": "chat", "input": "x", "background": true, "store": false}', "background"),
        (b'{"model": "chat", "input": "x", "stream": "yes"}', "stream"),
        (b'{"model": "chat", "input": "x", "conversation": "no-prefix"}', "conversation"),
        (b'{"model": "chat", "input": [{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]}', "input"),
        (b'{"model": "chat", "input": [{"type": "custom_tool_call_output", "call_id": "call_nowhere", "output": "x"}]}', "input"),
        (b'{"model": "chat", "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": "yes"}]}', "input[0].approve"),
        (b'{"model": "chat", "input": [{"type": "web_search_call", "id": "ws_1", "status": "done", "action": {"type": "search"}}]}', "input[0].status"),
        (b'{"model": "chat", "input": [{"type": "mcp_call", "id": "mcp_1", "server_label": "docs", "name": "add"}]}', "input[0]"),
    ],
)
def test_bad_requests_get_400_naming_the_param(gateway, fake_chat, body, param):
    before = len(fake_chat.requests)
    status, _, payload = post_raw(gateway, "POST", "/v1/responses", body, {"Content-Type": "application/json"})
    assert status == 400, payload
    assert_envelope(payload, param=param)
    assert payload["error"]["type"] == "invalid_request_error"
    assert len(fake_chat.requests) == before  # nothing went upstream


def test_metadata_limits(client):
    with pytest.raises(openai.BadRequestError) as too_many:
        client.responses.create(model="chat", input="x", metadata={f"k{i}": "v" for i in range(17)})
    assert too_many.value.body["param"] == "metadata"
    with pytest.raises(openai.BadRequestError) as long_key:
        client.responses.create(model="chat", input="x", metadata={"k" * 65: "v"})
    assert long_key.value.body["param"].startswith("metadata.")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="chat", input="x", metadata={"k": "v" * 513})
    assert client.responses.create(model="chat", input="x", metadata={"k" * 64: "v" * 512}).status == "completed"


def test_unknown_fields_openai_accepts_are_not_rejected(client):
    response = client.responses.create(
        model="chat", input="x", extra_body={"some_future_field": {"a": 1}, "service_tier": "auto", "truncation": "auto", "max_tool_calls": 3}
    )
    assert response.status == "completed" and response.truncation == "auto" and response.max_tool_calls == 3


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as error:
        client.responses.create(model="no-such-model", input="x")
    assert error.value.body == {
        "message": "The model 'no-such-model' does not exist or you do not have access to it. Models available: chat, hang, unreachable, mock-*.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_unknown_route_and_wrong_method(gateway):
    status, _, payload = post_raw(gateway, "GET", "/v1/nothing-here")
    assert status == 404
    assert_envelope(payload, code="unknown_url")
    status, _, payload = post_raw(gateway, "PUT", "/v1/responses", b"{}")
    assert status == 405
    assert_envelope(payload, code="method_not_allowed")


def test_oversized_body_is_413(fake_chat, tmp_path):
    from conftest import chat_models
    from gateway import Gateway

    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "max_body_bytes": 2048}, tmp_path).start()
    try:
        status, _, payload = post_raw(gw, "POST", "/v1/responses", json.dumps({"model": "chat", "input": "x" * 5000}).encode())
        assert status == 413
        assert_envelope(payload, code="request_too_large")
    finally:
        gw.stop()


@pytest.mark.parametrize(
    "model, status, code",
    [
        ("mock-error-400", 400, "upstream_invalid_request"),
        ("mock-error-401", 502, "upstream_auth_error"),
        ("mock-error-429", 429, "rate_limit_exceeded"),
        ("mock-error-500", 502, "upstream_error"),
        ("mock-error-503", 503, "upstream_overloaded"),
        ("mock-error-html", 502, "upstream_error"),
        ("hang", 504, "upstream_timeout"),
        ("unreachable", 502, "upstream_unreachable"),
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_upstream_errors_before_the_stream_are_plain_errors(gateway, model, status, code, streaming):
    body = json.dumps({"model": model, "input": "x", "stream": streaming}).encode()
    got, headers, payload = post_raw(gateway, "POST", "/v1/responses", body)
    assert got == status, payload
    assert_envelope(payload, code=code)
    assert "sk-upstr" not in json.dumps(payload) and UPSTREAM_KEY not in json.dumps(payload)
    if model == "mock-error-429":
        assert headers["Retry-After"] == "7"
    if model == "mock-error-400":
        assert "maximum context length" in payload["error"]["message"]


def test_sdk_sees_rate_limit(client):
    with pytest.raises(openai.RateLimitError) as error:
        client.responses.create(model="mock-error-429", input="x")
    assert error.value.response.headers["retry-after"] == "7"


def test_upstream_secret_never_leaks_into_logs(gateway, client):
    for model in ("mock-error-401", "mock-error-400", "chat"):
        try:
            client.responses.create(model=model, input="x")
        except openai.APIError:
            pass
    assert UPSTREAM_KEY not in gateway.logs()


def test_master_key(fake_chat, tmp_path):
    from conftest import chat_models, sdk
    from gateway import Gateway

    gw = Gateway(
        {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "master_key": "${TEST_MASTER_KEY}"},
        tmp_path,
        env={"TEST_MASTER_KEY": "rk-master-1234"},
    ).start()
    try:
        status, _, payload = post_raw(gw, "GET", "/v1/models")
        assert status == 401
        assert_envelope(payload, code="missing_api_key")
        with pytest.raises(openai.AuthenticationError) as wrong:
            sdk(gw, "rk-wrong").responses.create(model="chat", input="x")
        assert wrong.value.body["code"] == "invalid_api_key" and "rk-wrong" not in str(wrong.value.body)
        assert sdk(gw, "rk-master-1234").responses.create(model="chat", input="x").status == "completed"
        assert post_raw(gw, "GET", "/health")[0] == 200  # liveness needs no key
        assert "rk-master-1234" not in gw.logs()
    finally:
        gw.stop()


def test_shutdown_is_clean(fake_chat, tmp_path):
    from conftest import chat_models
    from gateway import Gateway

    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db"}, tmp_path).start()
    gw.stop()
    assert gw.process.returncode == 0, gw.logs()
    assert "Traceback" not in gw.logs()
