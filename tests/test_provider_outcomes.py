"""The same outcome through every provider: stop reasons, upstream errors before a stream, and
upstream errors during one, each table row one provider's wire format."""

from __future__ import annotations

import openai
import pytest
from conftest import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, UPSTREAM_KEY
from helpers import assert_upstream_error, create, stream, types


@pytest.mark.parametrize(
    "model, reason",
    [
        ("mock-length", "max_output_tokens"),
        ("mock-content-filter", "content_filter"),
        ("claude-max-tokens", "max_output_tokens"),
        ("claude-refusal", "content_filter"),
        ("gemini-max-tokens", "max_output_tokens"),
        ("gemini-safety", "content_filter"),
        ("oai-incomplete", "max_output_tokens"),
    ],
)
def test_stop_reasons_become_incomplete(multi, model, reason):
    body = create(multi, model=model, input="x")
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": reason}
    assert body["completed_at"] is None


@pytest.mark.parametrize(
    "model, status, code, secret, retry_after",
    [
        ("mock-error-429", 429, "rate_limit_exceeded", UPSTREAM_KEY, "7"),
        ("claude-error-400", 400, "upstream_invalid_request", ANTHROPIC_KEY, None),
        ("claude-error-401", 502, "upstream_auth_error", ANTHROPIC_KEY, None),
        ("claude-error-429", 429, "rate_limit_exceeded", ANTHROPIC_KEY, "12"),
        ("claude-error-529", 503, "upstream_overloaded", ANTHROPIC_KEY, None),
        ("gemini-error-400", 400, "upstream_invalid_request", GEMINI_KEY, None),
        ("gemini-error-key", 502, "upstream_auth_error", GEMINI_KEY, None),
        ("gemini-error-429", 429, "rate_limit_exceeded", GEMINI_KEY, "17"),
        ("gemini-error-503", 503, "upstream_overloaded", GEMINI_KEY, None),
        ("oai-error-400", 400, "upstream_invalid_request", OPENAI_KEY, None),
        ("oai-error-429", 429, "rate_limit_exceeded", OPENAI_KEY, "3"),
    ],
)
def test_errors_before_the_stream_are_plain_errors(providers_gateway, model, status, code, secret, retry_after):
    assert_upstream_error(providers_gateway, model, status, code, secret, retry_after)


@pytest.mark.parametrize(
    "model, message",
    [
        ("mock-midstream-error", "The server had an error"),
        ("mock-cut", "closed the connection mid-response"),
        ("claude-midstream-error", "Overloaded"),
        ("claude-cut", "ended before"),
        ("gemini-midstream-error", "internal error"),
        ("gemini-cut", "ended before"),
        ("oai-failed", "invalid content"),
    ],
)
def test_errors_during_the_stream_fail_the_response(multi, model, message):
    events = stream(multi, model=model, input="x")
    assert types(events)[-2:] == ["error", "response.failed"]
    failed = events[-1]["response"]
    assert message in failed["error"]["message"] and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["content"][0]["text"].startswith("Partial") and failed["output"][0]["status"] == "incomplete"
    assert multi.responses.retrieve(failed["id"]).status == "failed"


def test_sdk_sees_overload_as_503(multi):
    with pytest.raises(openai.InternalServerError) as error:
        multi.responses.create(model="claude-error-529", input="x")
    assert error.value.status_code == 503
