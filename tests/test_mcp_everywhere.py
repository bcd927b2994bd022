"""MCP tools run by the gateway on every remote provider, the native OpenAI upstream included
(unless the model passes them through), and a third-party MCP server from PyPI
(`mcp-server-time`) that the config runs as a process, over stdio, offline."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import openai
import pytest
from conftest import chat_models, provider_models, sdk
from gateway import Gateway
from helpers import create, stream, types
from providers import models
from test_mcp import docs, mcp_server, stats  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def everywhere(fake_chat, fake_anthropic, fake_gemini, fake_responses, mcp_server, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("mcp-everywhere")
    models = provider_models(fake_chat, fake_anthropic, fake_gemini, fake_responses)
    config = {"models": models, "database_url": f"sqlite:///{workdir}/r.db", "mcp_allow_hosts": [mcp_server.removeprefix("http://")]}
    gw = Gateway(config, workdir).start()
    yield sdk(gw)
    gw.stop()


@pytest.mark.parametrize("model", models("mcp"))
def test_every_provider_calls_mcp_tools_through_the_gateway(everywhere, model, mcp_server, fake_anthropic, fake_gemini, fake_responses, fake_chat):  # noqa: F811
    upstream = {"claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses, "mock": fake_chat}[model.split("-")[0]]
    before = len(upstream.requests)
    events = stream(everywhere, model=model, input="What is 2 + 3?", tools=[docs(mcp_server)])
    assert "response.mcp_call.completed" in types(events) and types(events)[-1] == "response.completed"
    response = events[-1]["response"]
    assert [item["type"] for item in response["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert response["output"][1]["output"] == "5" and response["output"][2]["content"][0]["text"] == "The tool said: 5"
    sent = upstream.requests[before:]
    assert len(sent) == 2 and "mcp__docs__add" in json.dumps(sent[0]) and '"mcp"' not in json.dumps(sent[0]["tools"])  # offered as a function
    # a later turn sees the earlier call as the function call and output it was, and lists nothing anew
    lists = stats(mcp_server)["methods"]["tools/list"]
    later = create(everywhere, model=model.replace("mcp-add", "text"), input="Thanks", previous_response_id=response["id"], tools=[docs(mcp_server)])
    seen = json.dumps(upstream.requests[-1])
    assert later["status"] == "completed" and "mcp__docs__add" in seen and "mcp_list_tools" not in seen and "mcpl_" not in seen
    assert stats(mcp_server)["methods"]["tools/list"] == lists
    # the SDK's own stream helper sees the same response through to its end
    with everywhere.responses.stream(model=model, input="What is 2 + 3?", tools=[docs(mcp_server)]) as events:
        final = events.get_final_response()
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"] and final.output_text == "The tool said: 5"
    assert [item.type for item in everywhere.responses.retrieve(final.id).output] == ["mcp_list_tools", "mcp_call", "message"]


def test_a_passthrough_model_leaves_mcp_to_openai(everywhere, mcp_server, fake_responses):  # noqa: F811
    calls = stats(mcp_server)["methods"].get("tools/list", 0)
    choice = {"type": "mcp", "server_label": "docs", "name": "add"}
    response = create(everywhere, model="passthrough-text", input="Hi", tools=[docs(mcp_server)], tool_choice=choice)
    assert response["output"][0]["type"] == "message"
    assert fake_responses.last()["tools"] == [docs(mcp_server)] and fake_responses.last()["tool_choice"] == choice  # as the client gave them
    assert stats(mcp_server)["methods"].get("tools/list", 0) == calls  # the gateway never contacted the server


def _children(pid: int) -> list[tuple[int, str]]:
    """Every process below `pid`, with its command line."""
    found, parents = [], {pid}
    for _ in range(4):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in parents:
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
            if parent in parents:
                parents.add(int(entry.name))
                found.append((int(entry.name), command))
    return found


def test_a_third_party_stdio_server_run_from_the_config(fake_chat, tmp_path):
    server = {"label": "time", "command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"], "env": {"TZ_HINT": "env-secret-xyz"}}
    config = {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "mcp_servers": [server]}
    gw = Gateway(config, tmp_path).start()
    try:
        client = sdk(gw)
        tool = {"type": "mcp", "server_label": "time", "require_approval": "never"}
        assert not [pid for pid, command in _children(gw.process.pid) if "mcp_server_time" in command]  # started at its first use
        events = stream(client, model="mock-mcp-time", input="What time is it in UTC?", tools=[tool])
        response = events[-1]["response"]
        listing, call, answer = response["output"]
        assert {entry["name"] for entry in listing["tools"]} == {"get_current_time", "convert_time"}
        assert call["status"] == "completed" and json.loads(call["output"])["timezone"] == "UTC"
        assert answer["content"][0]["text"] == "The tool said: " + call["output"]
        (pid,) = [pid for pid, command in _children(gw.process.pid) if "mcp_server_time" in command]
        again = create(client, model="mock-mcp-time", input="And now?", tools=[tool], previous_response_id=response["id"])
        assert again["output"][0]["status"] == "completed"
        assert [p for p, command in _children(gw.process.pid) if "mcp_server_time" in command] == [pid]  # one process, kept
        os.kill(pid, signal.SIGKILL)  # it dies: the next call fails cleanly, the one after runs on a new process
        deadline, outputs = time.monotonic() + 20, []
        while time.monotonic() < deadline and not (outputs and outputs[-1] == "completed"):
            after = create(client, model="mock-mcp-time", input="Still there?", tools=[tool], previous_response_id=response["id"])
            outputs.append(after["output"][0]["status"])
            assert after["status"] == "completed"
        assert outputs[-1] == "completed" and len(outputs) <= 2
        (pid,) = [pid for pid, command in _children(gw.process.pid) if "mcp_server_time" in command]
        assert "env-secret-xyz" not in gw.logs()
    finally:
        gw.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]:
        assert time.monotonic() < deadline, "the stdio server outlived its gateway"
        time.sleep(0.1)


def test_a_stdio_server_that_cannot_start_is_not_started_for_every_request(fake_chat, tmp_path):
    starts = tmp_path / "starts"
    failing = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)"
    config = {
        "models": chat_models(fake_chat),
        "database_url": f"sqlite:///{tmp_path}/r.db",
        "mcp_servers": [{"label": "gone", "command": sys.executable, "args": ["-c", failing]}],
    }
    gw = Gateway(config, tmp_path).start()
    try:
        tool = {"type": "mcp", "server_label": "gone", "require_approval": "never"}
        for _ in range(3):
            with pytest.raises(openai.APIStatusError) as failed:
                sdk(gw).responses.create(model="mock-text", input="x", tools=[tool])
            assert failed.value.status_code == 424 and "'gone'" in failed.value.body["message"]
        assert starts.read_text() == "x"  # one process, not one per request
    finally:
        gw.stop()
