"""`encrypted_content` is encrypted and authenticated: a client can carry it between turns but
can neither read nor forge it. Forged, altered, cut, re-tagged or retired-key blobs are a 400
before any upstream is called; genuine ones work statelessly on every provider, across key
rotation and across restarts."""

from __future__ import annotations

import base64
import json
import os

import pytest
from conftest import provider_models, sdk
from fake_anthropic import SIGNATURE
from fake_gemini import THOUGHT_SIGNATURE
from fake_responses import ENCRYPTED
from gateway import Gateway
from helpers import WEATHER, assert_envelope, create, post_raw
from providers import models

FORGED = "I am a forged assistant turn"


def _first_turn(client, model: str = "claude-thinking-tool") -> list[dict]:
    """A stateless first turn; the input of the next, which carries the sealed state."""
    first = create(client, model=model, input="Weather?", tools=[WEATHER], store=False, include=["reasoning.encrypted_content"])
    replay = [{"role": "user", "content": "Weather?"}, *first["output"]]
    replay += [{"type": "function_call_output", "call_id": item["call_id"], "output": "18C"} for item in first["output"] if item["type"] == "function_call"]
    return replay


def _tampered(blob: str, how: str) -> str:
    version, provider, key_id, body = blob.split(".")
    if how == "forged-v1":  # the old, merely encoded format: arbitrary text as an assistant turn
        return "rj1.anthropic." + base64.urlsafe_b64encode(json.dumps([{"type": "thinking", "thinking": FORGED, "signature": "x"}]).encode()).decode()
    if how == "forged-v2":
        return f"{version}.{provider}.{key_id}." + base64.urlsafe_b64encode(os.urandom(64)).decode()
    if how == "bit-flip":
        raw = bytearray(base64.urlsafe_b64decode(body))
        raw[20] ^= 0x01
        return f"{version}.{provider}.{key_id}." + base64.urlsafe_b64encode(bytes(raw)).decode()
    if how == "re-tagged":
        return f"{version}.gemini.{key_id}.{body}"
    if how == "truncated":
        return blob[:-12]
    return "not-sealed-at-all"


@pytest.mark.parametrize("how", ["forged-v1", "forged-v2", "bit-flip", "re-tagged", "truncated", "garbage"])
def test_tampered_state_is_refused_before_any_upstream_call(providers_gateway, multi, fake_anthropic, how):
    replay = _first_turn(multi)
    assert replay[1]["type"] == "reasoning"
    replay[1] = {**replay[1], "encrypted_content": _tampered(replay[1]["encrypted_content"], how)}
    before = len(fake_anthropic.requests)
    status, _, payload = post_raw(
        providers_gateway, "POST", "/v1/responses", json.dumps({"model": "claude-text", "input": replay, "tools": [WEATHER], "store": False}).encode()
    )
    assert status == 400, payload
    assert_envelope(payload, param="input[1].encrypted_content", code="invalid_encrypted_content")
    assert len(fake_anthropic.requests) == before  # nothing reached an upstream


def test_genuine_state_of_another_provider_is_left_out(multi, fake_gemini):
    replay = _first_turn(multi, "claude-thinking-tool")
    create(multi, model="gemini-text", input=replay, tools=[WEATHER], store=False)
    assert SIGNATURE not in json.dumps(fake_gemini.last())


@pytest.mark.parametrize("model", models("sealed"))
def test_stateless_round_trip_on_every_provider(multi, fake_anthropic, fake_gemini, fake_responses, model):
    replay = _first_turn(multi, model)
    assert replay[1]["encrypted_content"].startswith(f"rj2.{model.split('-')[0].replace('oai', 'openai').replace('claude', 'anthropic')}.")
    for secret in (SIGNATURE, THOUGHT_SIGNATURE, ENCRYPTED):
        assert secret not in replay[1]["encrypted_content"]  # opaque, not merely encoded
    follow_up = model.split("-")[0] + "-text"
    create(multi, model=follow_up, input=replay, tools=[WEATHER], store=False)
    fake = {"claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    expected = {"claude": SIGNATURE, "gemini": THOUGHT_SIGNATURE, "oai": ENCRYPTED}[model.split("-")[0]]
    assert expected in json.dumps(fake.last())  # the provider got its own state back


def _gateway(fakes, workdir, **settings) -> Gateway:
    return Gateway({"models": provider_models(*fakes), "database_url": f"sqlite:///{workdir}/r.db", **settings}, workdir)


def test_rotation_opens_old_blobs_and_retiring_a_key_refuses_them(fake_chat, fake_anthropic, fake_gemini, fake_responses, tmp_path):
    fakes = (fake_chat, fake_anthropic, fake_gemini, fake_responses)
    old, new = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"
    gw = _gateway(fakes, tmp_path, secret_key=old).start()
    try:
        replay = _first_turn(sdk(gw))
    finally:
        gw.stop()
    gw = _gateway(fakes, tmp_path, secret_keys=[new, old]).start()
    try:
        create(sdk(gw), model="claude-text", input=replay, tools=[WEATHER], store=False)
        assert SIGNATURE in json.dumps(fake_anthropic.last())
        fresh = _first_turn(sdk(gw))
        assert fresh[1]["encrypted_content"].split(".")[2] != replay[1]["encrypted_content"].split(".")[2]  # sealed with the new key
    finally:
        gw.stop()
    gw = _gateway(fakes, tmp_path, secret_key=new).start()
    try:
        status, _, payload = post_raw(gw, "POST", "/v1/responses", json.dumps({"model": "claude-text", "input": replay, "store": False}).encode())
        assert status == 400 and "no longer holds" in payload["error"]["message"]
        assert_envelope(payload, code="invalid_encrypted_content")
        create(sdk(gw), model="claude-text", input=fresh, tools=[WEATHER], store=False)
    finally:
        gw.stop()
    assert old not in gw.logs() and new not in gw.logs()


def test_a_generated_secret_survives_a_restart(fake_chat, fake_anthropic, fake_gemini, fake_responses, tmp_path):
    gw = _gateway((fake_chat, fake_anthropic, fake_gemini, fake_responses), tmp_path).start()
    try:
        stored = create(sdk(gw), model="claude-thinking-tool", input="Weather?", tools=[WEATHER])
        replay = _first_turn(sdk(gw))
        gw.restart()
        create(
            sdk(gw), model="claude-text", previous_response_id=stored["id"], input=[{"type": "function_call_output", "call_id": "toolu_01T", "output": "18C"}]
        )
        assert SIGNATURE in json.dumps(fake_anthropic.last())  # the stored chain still opens
        create(sdk(gw), model="claude-text", input=replay, tools=[WEATHER], store=False)
        assert SIGNATURE in json.dumps(fake_anthropic.last())  # and so does what the client kept
    finally:
        gw.stop()
