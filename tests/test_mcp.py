"""MCP tools run by the gateway on a provider that cannot run them (Chat Completions here), against
a real MCP server from the official `mcp` package over streamable HTTP: the listing, the calls and
their events (validated against the spec), the result fed back within the same response, a
listing reused on the next turn, a failing tool, the address guard, and secrets kept out."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway, free_port
from helpers import create, stream, types, wait_until
from sockets import Socket

SECRET_HEADER = "team-secret-header-value"


def _serve(*mode: str):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mcp_server.py")), str(port), *mode])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def mcp_server():
    yield from _serve()


@pytest.fixture(scope="module")
def sse_server():
    yield from _serve("sse")


@pytest.fixture(scope="module")
def client(fake_chat, mcp_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mcp")
    host = mcp_server.removeprefix("http://")
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db", "mcp_allow_hosts": [host]}, workdir).start()
    yield sdk(gw)
    assert SECRET_HEADER not in gw.logs()
    gw.stop()


def docs(server: str, **more) -> dict:
    return {"type": "mcp", "server_label": "docs", "server_url": server + "/mcp", "require_approval": "never", **more}


def stats(server: str) -> dict:
    return httpx.get(server + "/stats").json()


def test_the_gateway_lists_calls_and_feeds_back_an_mcp_tool(client, mcp_server, fake_chat):
    before = len(fake_chat.requests)
    events = stream(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[docs(mcp_server, headers={"X-Team": SECRET_HEADER})])
    names = types(events)
    for expected in (
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
    ):
        assert expected in names, expected
    assert "response.function_call_arguments.delta" not in names
    response = events[-1]["response"]
    listing, call, answer = response["output"]
    long = "docs.search_every_page_of_the_whole_manual_for_a_phrase"
    assert listing["type"] == "mcp_list_tools" and {tool["name"] for tool in listing["tools"]} == {"add", "fail", "nap", "big", "picture", long}
    assert call["type"] == "mcp_call" and call["name"] == "add" and call["server_label"] == "docs" and call["output"] == "5"
    assert json.loads(call["arguments"]) == {"a": 2, "b": 3}
    assert answer["content"][0]["text"] == "The tool said: 5"
    first, second = fake_chat.requests[before:]
    assert "mcp__docs__add" in [tool["function"]["name"] for tool in first["tools"]]
    assert [m["content"] for m in second["messages"] if m["role"] == "tool"] == ["5"]
    assert response["tools"][0]["headers"] == {"X-Team": "<redacted>"}  # never echoed …
    assert SECRET_HEADER not in json.dumps(client.responses.retrieve(response["id"]).model_dump())  # … nor stored
    assert {"x-team": SECRET_HEADER} in stats(mcp_server)["headers"]  # but sent to the server


def test_a_listing_in_the_context_is_reused(client, mcp_server):
    def lists() -> int:
        return stats(mcp_server)["methods"].get("tools/list", 0)

    before = lists()
    first = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[docs(mcp_server)])
    assert lists() == before + 1  # the listing's session serves the call too
    second = create(client, model="mock-text", input="Thanks", tools=[docs(mcp_server)], previous_response_id=first["id"])
    assert lists() == before + 1 and [item["type"] for item in second["output"]] == ["message"]
    third = create(client, model="mock-mcp-add", input="Again?", tools=[docs(mcp_server)], previous_response_id=second["id"])
    assert lists() == before + 2  # not the gateway's: the SDK's client lists before its first call on a new session
    assert [item["type"] for item in third["output"]] == ["mcp_call", "message"]


def test_a_failing_tool_is_reported_and_the_model_goes_on(client, mcp_server):
    response = create(client, model="mock-mcp-fail", input="Try it", tools=[docs(mcp_server)])
    call = response["output"][1]
    assert call["status"] == "failed" and call["output"] is None and call["error"]["type"] == "mcp_tool_execution_error"
    said = call["error"]["content"][0]["text"]
    assert "fail" in said and response["output"][2]["content"][0]["text"] == f"The tool said: Error: {said}"  # the model was told
    assert response["status"] == "completed"


def test_unsafe_or_unreachable_servers_are_refused(client, mcp_server):
    port = mcp_server.rsplit(":", 1)[1]
    for url in (f"http://127.0.0.2:{port}/mcp", f"https://127.0.0.2:{port}/mcp", "https://[::1]/mcp", "ftp://docs.example/mcp"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="mock-mcp-add", input="x", tools=[{**docs(mcp_server), "server_url": url}])
        assert refused.value.body["param"] == "tools[0].server_url", url
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model="mock-mcp-add", input="x", tools=[{**docs(mcp_server), "server_url": mcp_server + "/nowhere"}])
    assert failed.value.status_code == 424 and "Error retrieving tool list from MCP server: 'docs'" in failed.value.body["message"]
    with pytest.raises(openai.BadRequestError) as odd:
        client.responses.create(model="mock-mcp-add", input="x", tools=[docs(mcp_server, require_approval="sometimes")])
    assert odd.value.body["param"] == "tools[0].require_approval"


def test_a_call_that_needs_approval_waits_for_it(client, mcp_server):
    tool = {k: v for k, v in docs(mcp_server).items() if k != "require_approval"}  # OpenAI's default: always
    calls = stats(mcp_server)["methods"].get("tools/call", 0)
    asked = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[tool])
    assert [item["type"] for item in asked["output"]] == ["mcp_list_tools", "mcp_approval_request"] and asked["status"] == "completed"
    request = asked["output"][1]
    assert request["name"] == "add" and request["server_label"] == "docs" and json.loads(request["arguments"]) == {"a": 2, "b": 3}
    assert stats(mcp_server)["methods"].get("tools/call", 0) == calls  # nothing ran
    approval = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
    approved = create(client, model="mock-mcp-add", tools=[tool], previous_response_id=asked["id"], input=[approval])
    call, answer = approved["output"]
    assert call["type"] == "mcp_call" and call["output"] == "5" and call["approval_request_id"] == request["id"]
    (given,) = [item.model_dump(exclude_none=True) for item in client.responses.input_items.list(approved["id"]).data]
    assert given["type"] == "mcp_approval_response" and given["approval_request_id"] == request["id"] and given["approve"] is True
    assert answer["content"][0]["text"] == "The tool said: 5"
    # a refusal: the model is told, and nothing runs
    only_add = {**tool, "require_approval": {"always": {"tool_names": ["add"]}}}
    asked = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[only_add])
    refusal = {"type": "mcp_approval_response", "approval_request_id": asked["output"][-1]["id"], "approve": False, "reason": "not now"}
    refused = create(client, model="mock-mcp-add", tools=[only_add], previous_response_id=asked["id"], input=[refusal])
    assert [item["type"] for item in refused["output"]] == ["message"]
    assert refused["output"][0]["content"][0]["text"] == "The tool said: The user did not approve this call. Reason: not now"
    assert stats(mcp_server)["methods"]["tools/call"] == calls + 1


def test_a_client_that_keeps_its_own_history(client, mcp_server):
    """Without `previous_response_id` a client (the Agents SDK) sends back every item: the
    approval request with its response runs the call, once; sent again later, with the call that
    ran after it, nothing runs again."""
    tool = {k: v for k, v in docs(mcp_server).items() if k != "require_approval"}
    asked = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[tool])
    history = [{"role": "user", "content": "What is 2 + 3?"}, *asked["output"]]
    history.append({"type": "mcp_approval_response", "approval_request_id": asked["output"][-1]["id"], "approve": True})
    calls = stats(mcp_server)["methods"].get("tools/call", 0)
    approved = create(client, model="mock-mcp-add", tools=[tool], input=history)
    assert [item["type"] for item in approved["output"]] == ["mcp_call", "message"] and approved["output"][0]["output"] == "5"
    later = create(client, model="mock-mcp-add", tools=[tool], input=[*history, *approved["output"], {"role": "user", "content": "Thanks"}])
    assert [item["type"] for item in later["output"]] == ["mcp_approval_request"]  # the new question's own call asks anew
    assert stats(mcp_server)["methods"]["tools/call"] == calls + 1


def test_filters_by_name_and_read_only(client, mcp_server, fake_chat):
    """`allowed_tools` and `require_approval` take OpenAI's filters, `{tool_names, read_only}`;
    `add` is the server's one tool annotated read-only (`readOnlyHint`)."""
    listed = create(client, model="mock-text", input="Hi", tools=[docs(mcp_server, allowed_tools={"read_only": True})])
    annotations = {tool["name"]: tool.get("annotations") for tool in listed["output"][0]["tools"]}
    assert annotations["add"] == {"read_only": True} and annotations["fail"] == {"read_only": False}
    assert [tool["function"]["name"] for tool in fake_chat.last()["tools"]] == ["mcp__docs__add"]
    described = docs(mcp_server, allowed_tools={"read_only": False, "tool_names": ["add", "fail", "nap"]}, server_description="The docs team's tools.")
    create(client, model="mock-text", input="Hi", tools=[described])
    assert [tool["function"]["name"] for tool in fake_chat.last()["tools"]] == ["mcp__docs__fail", "mcp__docs__nap"]
    assert fake_chat.last()["tools"][0]["function"]["description"].endswith("(From the MCP server 'docs': The docs team's tools.)")
    unasked = docs(mcp_server, require_approval={"never": {"read_only": True}})  # read-only tools run, the others wait
    assert [item["type"] for item in create(client, model="mock-mcp-add", input="2 + 3?", tools=[unasked])["output"]][1:] == ["mcp_call", "message"]
    assert [item["type"] for item in create(client, model="mock-mcp-fail", input="Fail", tools=[unasked])["output"]][1:] == ["mcp_approval_request"]
    overruled = docs(mcp_server, require_approval={"never": {"read_only": True}, "always": {"tool_names": ["add"]}})
    assert [item["type"] for item in create(client, model="mock-mcp-add", input="2 + 3?", tools=[overruled])["output"]][1:] == ["mcp_approval_request"]
    for bad, param in (
        ({"allowed_tools": {"read_only": "yes"}}, "tools[0].allowed_tools.read_only"),
        ({"allowed_tools": [1]}, "tools[0].allowed_tools.tool_names"),
        ({"require_approval": {"never": {"names": ["add"]}}}, "tools[0].require_approval.never"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="mock-text", input="x", tools=[docs(mcp_server, **bad)])
        assert refused.value.body["param"] == param, bad


def test_a_server_named_in_the_config(fake_chat, mcp_server, tmp_path):
    """A request names the server by its label alone; the config's URL and headers are used, and
    the operator's choice passes the address guard (no mcp_allow_hosts here)."""
    config = {
        "models": chat_models(fake_chat),
        "database_url": f"sqlite:///{tmp_path}/r.db",
        "mcp_servers": [{"label": "docs", "url": mcp_server + "/mcp", "headers": {"X-Config": "${MCP_TOKEN}"}}],
    }
    gw = Gateway(config, tmp_path, env={"MCP_TOKEN": "config-secret-token"}).start()
    try:
        response = create(sdk(gw), model="mock-mcp-add", input="2 + 3?", tools=[{"type": "mcp", "server_label": "docs", "require_approval": "never"}])
        assert response["output"][1]["output"] == "5" and response["output"][2]["content"][0]["text"] == "The tool said: 5"
        assert {"x-config": "config-secret-token"} in stats(mcp_server)["headers"]
        with pytest.raises(openai.BadRequestError) as unnamed:  # another label needs its own server_url
            sdk(gw).responses.create(model="mock-mcp-add", input="x", tools=[{"type": "mcp", "server_label": "other", "require_approval": "never"}])
        assert unnamed.value.body["param"] == "tools[0].server_url"
        assert "config-secret-token" not in gw.logs()
    finally:
        gw.stop()


def test_a_server_that_speaks_only_sse(fake_chat, sse_server, tmp_path):
    gw = Gateway(
        {"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "mcp_allow_hosts": [sse_server.removeprefix("http://")]}, tmp_path
    ).start()
    try:
        tool = {"type": "mcp", "server_label": "docs", "server_url": sse_server + "/sse", "require_approval": "never"}
        response = create(sdk(gw), model="mock-mcp-add", input="2 + 3?", tools=[tool])
        assert [item["type"] for item in response["output"]] == ["mcp_list_tools", "mcp_call", "message"]
        assert response["output"][1]["output"] == "5"
    finally:
        gw.stop()


def test_parallel_calls_run_together_within_max_tool_calls(client, mcp_server):
    calls = stats(mcp_server)["methods"].get("tools/call", 0)
    sessions = stats(mcp_server)["methods"].get("server/discover", 0)
    both = create(client, model="mock-mcp-add-twice", input="2+3 and 4+5?", tools=[docs(mcp_server)])
    assert stats(mcp_server)["methods"]["server/discover"] - sessions == 1  # one session: the listing, then both calls
    assert [item.get("output") for item in both["output"] if item["type"] == "mcp_call"] == ["5", "9"]
    assert both["output"][-1]["content"][0]["text"] == "The tools said: 5 | 9"
    bounded = create(client, model="mock-mcp-add-twice", input="2+3 and 4+5?", tools=[docs(mcp_server)], max_tool_calls=1)
    ran, unrun = [item for item in bounded["output"] if item["type"] == "mcp_call"]
    assert ran["output"] == "5" and unrun["status"] == "failed" and "max_tool_calls" in unrun["error"]["message"]
    assert stats(mcp_server)["methods"]["tools/call"] == calls + 3  # two, then one


def test_calls_are_bounded_in_time_and_output(fake_chat, mcp_server, tmp_path):
    """`mcp_limits`: a call past `call_timeout` fails, calls once the response's `response_time`
    is spent fail unrun, and an output is cut at `max_output`; the model is told each time."""
    config = {
        "models": chat_models(fake_chat),
        "database_url": f"sqlite:///{tmp_path}/r.db",
        "mcp_allow_hosts": [mcp_server.removeprefix("http://")],
        "mcp_limits": {"call_timeout": 1, "response_time": 2.5, "max_output": 1000},
    }
    gw = Gateway(config, tmp_path).start()
    try:
        client = sdk(gw)
        naps = create(client, model="mock-mcp-naps", input="Rest four times", tools=[docs(mcp_server)])
        calls = [item for item in naps["output"] if item["type"] == "mcp_call"]
        assert len(calls) == 4 and all(call["status"] == "failed" and call["error"]["type"] == "mcp_protocol_error" for call in calls)
        assert "did not answer within 1 s" in calls[0]["error"]["message"] and "did not answer within" in calls[2]["error"]["message"]
        assert calls[3]["error"]["message"] == "This response's MCP calls took their 2.5 s: not run."
        assert naps["status"] == "completed" and naps["output"][-1]["content"][0]["text"] == f"The tool said: Error: {calls[3]['error']['message']}"
        big = create(client, model="mock-mcp-big", input="Say a lot", tools=[docs(mcp_server)])
        assert big["output"][1]["output"] == "x" * 1000 and fake_chat.requests[-1]["messages"][-1]["content"] == "x" * 1000
    finally:
        gw.stop()


def test_a_tool_name_no_upstream_takes_is_offered_under_one_that_fits(client, mcp_server, fake_chat):
    long = "docs.search_every_page_of_the_whole_manual_for_a_phrase"
    response = create(client, model="mock-mcp-long-name", input="Look it up", tools=[docs(mcp_server)])
    call = response["output"][1]
    assert call["name"] == long and call["output"] == "found: rejoinder"  # the client sees the tool's own name
    offered = [tool["function"]["name"] for tool in fake_chat.requests[-2]["tools"]]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) for name in offered) and len(set(offered)) == len(offered)
    later = create(client, model="mock-text", input="Thanks", previous_response_id=response["id"], tools=[docs(mcp_server)])
    assert later["status"] == "completed"
    (earlier,) = [message for message in fake_chat.requests[-1]["messages"] if message.get("tool_calls")]
    assert earlier["tool_calls"][0]["function"]["name"] in offered  # a later turn names the call as it was offered


def test_over_a_websocket_and_in_a_background_run(client, mcp_server):
    """A socket turn runs MCP like a POST; an approval sent in a background request runs its call
    once (checked when the request is queued, run when the run runs)."""
    with Socket(client) as socket:
        frames = socket.turn(model="mock-mcp-add", input="What is 2 + 3?", tools=[docs(mcp_server)])
    assert "response.mcp_call.completed" in [frame["type"] for frame in frames]
    assert [item["type"] for item in frames[-1]["response"]["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    tool = {k: v for k, v in docs(mcp_server).items() if k != "require_approval"}
    asked = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[tool])
    calls = stats(mcp_server)["methods"].get("tools/call", 0)
    approval = {"type": "mcp_approval_response", "approval_request_id": asked["output"][-1]["id"], "approve": True}
    queued = client.responses.create(model="mock-mcp-add", tools=[tool], previous_response_id=asked["id"], input=[approval], background=True)
    assert wait_until(lambda: client.responses.retrieve(queued.id).status == "completed")
    done = client.responses.retrieve(queued.id)
    assert [item.type for item in done.output] == ["mcp_call", "message"] and done.output_text == "The tool said: 5"
    assert stats(mcp_server)["methods"]["tools/call"] == calls + 1


def test_an_output_with_no_plain_text(client, mcp_server):
    response = create(client, model="mock-mcp-picture", input="Show me", tools=[docs(mcp_server)])
    assert response["output"][1]["output"] == "[image: image/png]\nthe notes"  # an image by its kind, a text resource by its text


def test_a_tool_choice_that_names_mcp_tools_forces_one_call(client, mcp_server, fake_chat):
    """`tool_choice` may name an MCP tool, a server, or `mcp` entries of `allowed_tools`: the model
    is made to call one of the functions they are offered as, once; the turn after the call may
    answer (a choice still forced there would call again until the rounds ran out)."""
    add = {"type": "mcp", "server_label": "docs", "name": "add"}
    for choice, first_choice, offered in (
        (add, {"type": "function", "function": {"name": "mcp__docs__add"}}, None),
        ({"type": "mcp", "server_label": "docs"}, "required", None),
        ("required", "required", None),
        ({"type": "allowed_tools", "mode": "required", "tools": [add]}, "required", ["mcp__docs__add"]),
    ):
        before = len(fake_chat.requests)
        response = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[docs(mcp_server)], tool_choice=choice)
        assert [item["type"] for item in response["output"]] == ["mcp_list_tools", "mcp_call", "message"] and response["tool_choice"] == choice
        first, second = fake_chat.requests[before:]
        assert (first["tool_choice"], second["tool_choice"]) == (first_choice, "auto"), choice
        if offered:  # allowed_tools narrows what the model is offered
            assert [tool["function"]["name"] for tool in first["tools"]] == offered
    for choice in (
        {"type": "mcp", "server_label": "elsewhere"},
        {**add, "name": "subtract"},
        {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "mcp"}]},
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="mock-mcp-add", input="x", tools=[docs(mcp_server)], tool_choice=choice)
        assert refused.value.body["param"] == "tool_choice" and refused.value.status_code == 400, choice


def test_a_forced_call_that_waited_for_approval_is_not_forced_again(client, mcp_server, fake_chat):
    tool = {k: v for k, v in docs(mcp_server).items() if k != "require_approval"}
    add = {"type": "mcp", "server_label": "docs", "name": "add"}
    asked = create(client, model="mock-mcp-add", input="What is 2 + 3?", tools=[tool], tool_choice=add)
    assert asked["output"][-1]["type"] == "mcp_approval_request"
    approval = {"type": "mcp_approval_response", "approval_request_id": asked["output"][-1]["id"], "approve": True}
    approved = create(client, model="mock-mcp-add", tools=[tool], tool_choice=add, previous_response_id=asked["id"], input=[approval])
    assert [item["type"] for item in approved["output"]] == ["mcp_call", "message"] and fake_chat.last()["tool_choice"] == "auto"
