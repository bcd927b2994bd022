"""The sampling knobs and aliases other gateways accept: each reaches every provider that has
it, under that provider's name, and a provider that cannot honour one refuses it with a 400
naming it; none is dropped silently."""

from __future__ import annotations

import json

import pytest
from helpers import assert_envelope, create, post_raw

KNOBS = {"stop": ["END"], "presence_penalty": 0.5, "frequency_penalty": 0.25, "seed": 7}


def test_chat_completions_takes_every_knob_and_the_aliases(multi, fake_chat):
    body = create(
        multi,
        model="chat",
        input="hi",
        extra_body={
            **KNOBS,
            "logit_bias": {"50256": -100},
            "max_tokens": 64,
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}},
            "n": 1,
            "tags": ["team-a"],
            "trace": {"trace_id": "t1"},
            "client_metadata": {"x-codex": "1"},
        },
    )
    sent = fake_chat.last()
    assert {key: sent[key] for key in ("stop", "presence_penalty", "frequency_penalty", "seed", "logit_bias", "max_tokens")} == {
        **KNOBS,
        "logit_bias": {"50256": -100},
        "max_tokens": 64,
    }
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert not {"n", "tags", "trace", "client_metadata"} & set(sent)
    assert body["presence_penalty"] == 0.5 and body["frequency_penalty"] == 0.25 and body["max_output_tokens"] == 64
    assert body["text"]["format"]["type"] == "json_schema"


def test_a_single_stop_string_becomes_a_list(multi, fake_chat):
    create(multi, model="chat", input="hi", extra_body={"stop": "END"})
    assert fake_chat.last()["stop"] == ["END"]


def test_anthropic_takes_stop_sequences(multi, fake_anthropic):
    create(multi, model="claude-text", input="hi", extra_body={"stop": ["END", "STOP"]})
    assert fake_anthropic.last()["stop_sequences"] == ["END", "STOP"]


def test_gemini_takes_stop_penalties_and_seed(multi, fake_gemini):
    create(multi, model="gemini-text", input="hi", extra_body=KNOBS)
    config = fake_gemini.last()["generationConfig"]
    assert {key: config[key] for key in ("stopSequences", "presencePenalty", "frequencyPenalty", "seed")} == {
        "stopSequences": ["END"],
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "seed": 7,
    }


def test_openai_responses_takes_verbosity(multi, fake_responses):
    create(multi, model="oai-text", input="hi", text={"verbosity": "low"})
    assert fake_responses.last()["text"]["verbosity"] == "low"


@pytest.mark.parametrize(
    "model, extra, param",
    [
        ("claude-text", {"seed": 1}, "seed"),
        ("claude-text", {"presence_penalty": 0.1}, "presence_penalty"),
        ("claude-text", {"logit_bias": {"1": 5}}, "logit_bias"),
        ("claude-text", {"text": {"verbosity": "high"}}, "text.verbosity"),
        ("gemini-text", {"logit_bias": {"1": 5}}, "logit_bias"),
        ("oai-text", {"stop": ["x"]}, "stop"),
        ("oai-text", {"seed": 1}, "seed"),
        ("oai-text", {"frequency_penalty": 0.2}, "frequency_penalty"),
        ("chat", {"n": 2}, "n"),
        ("chat", {"max_tokens": 64, "max_output_tokens": 32}, "max_tokens"),
        ("chat", {"response_format": {"type": "json_object"}, "text": {"format": {"type": "text"}, "verbosity": "medium"}}, None),
        ("chat", {"response_format": {"type": "json_object"}, "text": {"format": {"type": "json_object"}}}, "response_format"),
        ("chat", {"response_format": {"type": "nonsense"}}, "response_format.type"),
        ("chat", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("chat", {"presence_penalty": 3}, "presence_penalty"),
    ],
)
def test_what_a_provider_cannot_honour_is_a_400(providers_gateway, fake_chat, fake_anthropic, fake_gemini, fake_responses, model, extra, param):
    fakes = (fake_chat, fake_anthropic, fake_gemini, fake_responses)
    before = [len(fake.requests) for fake in fakes]
    status, _, payload = post_raw(providers_gateway, "POST", "/v1/responses", json.dumps({"model": model, "input": "hi", **extra}).encode())
    if param is None:  # a format alias beside a text param that only sets verbosity: fine
        assert status == 200, payload
        return
    assert status == 400, payload
    assert_envelope(payload, param=param)
    assert [len(fake.requests) for fake in fakes] == before  # nothing went upstream
