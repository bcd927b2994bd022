"""The real Codex CLI (`codex exec --json`, npm `@openai/codex`, installed by `make test`)
through Rejoinder on Chat Completions, Anthropic and Gemini upstreams: its first request
carries a `namespace` tool, a hosted `web_search` tool, `store: false`, encrypted reasoning and
`client_metadata`; the model calls Codex's shell tool, Codex runs it and sends the output
back, and the model answers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import provider_models
from gateway import Gateway
from providers import models

CODEX = Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / ".bin" / "codex"


@pytest.fixture(scope="module")
def codex_gateway(fake_chat, fake_anthropic, fake_gemini, fake_responses, tmp_path_factory):
    if not CODEX.exists():
        message = f"the Codex CLI is not installed at {CODEX} (make test installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    workdir = tmp_path_factory.mktemp("codex")
    gw = Gateway({"models": provider_models(fake_chat, fake_anthropic, fake_gemini, fake_responses), "database_url": f"sqlite:///{workdir}/r.db"}, workdir)
    yield gw.start()
    gw.stop()


def _codex(gw: Gateway, model: str, workdir: Path, websockets: bool = False) -> list[dict]:
    home = workdir / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "rejoinder"\n\n[model_providers.rejoinder]\nname = "Rejoinder"\n'
        f'base_url = "{gw.url}/v1"\nwire_api = "responses"\nenv_key = "REJOINDER_TEST_KEY"\n' + ("supports_websockets = true\n" if websockets else "")
    )
    env = {**os.environ, "CODEX_HOME": str(home), "REJOINDER_TEST_KEY": "unused"}
    done = subprocess.run(
        [str(CODEX), "exec", "--json", "--skip-git-repo-check", "Say hello from the shell."],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("model", models("codex"))
def test_codex_runs_a_shell_turn_on_every_provider(codex_gateway, fake_chat, fake_anthropic, fake_gemini, model, tmp_path):
    fake = {"mock": fake_chat, "claude": fake_anthropic, "gemini": fake_gemini}[model.split("-")[0]]
    before = len(fake.requests)
    events = _codex(codex_gateway, model, tmp_path)
    assert events[-1]["type"] == "turn.completed", events
    command = next(e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "command_execution")
    assert "hello-from-codex" in command["aggregated_output"] and command["exit_code"] == 0
    answer = next(e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "agent_message")
    assert answer["text"] == "Hello, world!"

    first, second = fake.requests[before : before + 2]
    offered = json.dumps(first)
    assert "exec_command" in offered and "__" in offered  # a namespace's tools, offered as <namespace>__<name>
    # the hosted web search: the provider's own where it has one, else left out of the model's view
    searches = {"mock": None, "claude": "web_search_20250305", "gemini": "google_search"}[model.split("-")[0]]
    assert (searches in offered) if searches else ("web_search" not in offered and "web_search) was left out" in codex_gateway.logs())
    assert "hello-from-codex" in json.dumps(second)  # the shell's output went back to the model


def test_codex_over_a_websocket(codex_gateway, fake_chat, tmp_path):
    """With `supports_websockets = true` on its provider, Codex keeps one WebSocket to the
    gateway (`GET /v1/responses` upgraded) for its turns: the same shell turn goes through."""
    before = len(fake_chat.requests)
    over_sockets = _websocket_turns(codex_gateway)
    events = _codex(codex_gateway, "mock-codex-shell", tmp_path, websockets=True)
    assert events[-1]["type"] == "turn.completed", events
    command = next(e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "command_execution")
    assert "hello-from-codex" in command["aggregated_output"]
    assert len(fake_chat.requests) - before == 2
    assert _websocket_turns(codex_gateway) - over_sockets >= 2  # both turns came over the socket (with Codex's warm-up, 3)


def _websocket_turns(gw: Gateway) -> float:
    """Response requests the gateway counted in WebSocket mode (`/metrics`)."""
    metrics = httpx.get(gw.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("rejoinder_requests_total{") and 'mode="websocket"' in line)
