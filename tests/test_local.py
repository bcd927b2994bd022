"""The keyless default: SmolLM2-135M-Instruct run in-process, through the official SDK."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import openai
import pytest
from conftest import sdk
from gateway import Gateway
from helpers import create, events_of, raw_stream, stream, types
from sockets import Socket, final, text_of
from test_mcp import docs, mcp_server  # noqa: F401  (a fixture)

if not os.environ.get("CI"):  # `make test` installs the local extra; only a bare checkout may lack it
    pytest.importorskip("llama_cpp", reason="the local extra is not installed")

MODEL = "local-smollm2"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False},
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "Current time in a time zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"], "additionalProperties": False},
}


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory, mcp_server):  # noqa: F811
    workdir = tmp_path_factory.mktemp("local")
    model = {"name": MODEL, "provider": "local", "local": {"context_tokens": 2048, "threads": 2}}
    config = {"models": [model], "database_url": f"sqlite:///{workdir}/r.db", "mcp_allow_hosts": [mcp_server.removeprefix("http://")]}
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def local(local_gateway):
    return sdk(local_gateway, timeout=110)  # generation on a busy 2-core machine is slow, not wrong (pytest's own bound: 120 s)


def test_generates_real_text(local):
    body = create(local, model=MODEL, input="What is the capital of France?", temperature=0, max_output_tokens=30)
    assert body["status"] in ("completed", "incomplete")
    text = body["output"][0]["content"][0]["text"]
    assert text.strip() and "<|im_end|>" not in text
    usage = body["usage"]
    assert usage["input_tokens"] > 10 and 0 < usage["output_tokens"] <= 31


def test_stream_matches_the_stored_response(local):
    events = stream(local, model=MODEL, input="Say hello.", temperature=0, max_output_tokens=20)
    assert types(events)[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]
    assert deltas and final["output"][0]["content"][0]["text"] == deltas
    assert local.responses.with_raw_response.retrieve(final["id"]).http_response.json() == final


def test_a_background_run_on_the_local_model_streams_and_resumes(local, local_gateway):
    events = list(local.responses.create(model=MODEL, input="Say hello.", temperature=0, max_output_tokens=20, background=True, stream=True))
    assert [event.type for event in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    final = events[-1].response
    assert events[-1].type in ("response.completed", "response.incomplete") and final.output_text
    assert events_of(raw_stream(local_gateway, final.id, 2))[0]["sequence_number"] == 3
    assert local.responses.retrieve(final.id).output_text == final.output_text


def test_websocket_turns_chain_without_storing(local):
    with Socket(local) as socket:
        first = final(socket.turn(model=MODEL, input="My name is Ada.", store=False, temperature=0, max_output_tokens=20, stream_id="chat"))
        frames = socket.turn(
            model=MODEL, input="What is my name?", store=False, previous_response_id=first["id"], temperature=0, max_output_tokens=20, stream_id="chat"
        )
    assert final(frames)["previous_response_id"] == first["id"] and text_of(frames).strip()
    assert final(frames)["usage"]["input_tokens"] > first["usage"]["input_tokens"]  # the first turn came back as context


def test_input_tokens_are_the_gguf_tokenizers_count(local):
    counted = local.responses.input_tokens.count(model=MODEL, input="Name three colours.", instructions="Answer in one line.")
    body = create(local, model=MODEL, input="Name three colours.", instructions="Answer in one line.", max_output_tokens=16, temperature=0)
    assert counted.input_tokens == body["usage"]["input_tokens"] > 5


def test_max_output_tokens_makes_it_incomplete(local):
    body = create(local, model=MODEL, input="Write a long story about a dragon.", temperature=0, max_output_tokens=16)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] <= 17


def test_json_schema_output_always_parses(local):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    body = create(
        local,
        model=MODEL,
        input="Name a big city and its population.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
        temperature=0,
        max_output_tokens=60,
    )
    value = json.loads(body["output"][0]["content"][0]["text"])
    jsonschema.validate(value, schema)


def test_json_object_output_parses(local):
    body = create(local, model=MODEL, input="Describe a cat as JSON.", text={"format": {"type": "json_object"}}, temperature=0, max_output_tokens=300)
    assert body["status"] == "completed"
    assert isinstance(json.loads(body["output"][0]["content"][0]["text"]), (dict, list))


def test_required_tool_call_follows_the_schema(local):
    body = create(local, model=MODEL, input="What is the weather in Paris?", tools=[WEATHER, TIME], tool_choice="required", temperature=0, max_output_tokens=60)
    [call] = body["output"]
    assert call["type"] == "function_call" and call["name"] in ("get_weather", "get_time") and call["call_id"]
    schema = WEATHER if call["name"] == "get_weather" else TIME
    jsonschema.validate(json.loads(call["arguments"]), schema["parameters"])


def test_named_tool_choice_calls_that_tool_and_streams_it(local):
    events = stream(
        local,
        model=MODEL,
        input="What time is it in Tokyo?",
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "get_time"},
        temperature=0,
        max_output_tokens=60,
    )
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0]["name"] == "get_time"
    jsonschema.validate(json.loads(done[0]["arguments"]), TIME["parameters"])
    streamed = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert streamed == done[0]["arguments"]


def test_an_mcp_tool_the_gateway_runs(local, mcp_server):  # noqa: F811
    """The tool choice names an MCP tool, so the grammar makes the model call it: the gateway
    runs it and the model's next turn goes on from its output, in one response."""
    add = {"type": "mcp", "server_label": "docs", "name": "add"}
    events = stream(local, model=MODEL, input="Add 2 and 3.", tools=[docs(mcp_server)], tool_choice=add, temperature=0, max_output_tokens=60)
    assert sum(name in ("response.completed", "response.incomplete", "response.failed") for name in types(events)) == 1
    assert types(events)[-1] in ("response.completed", "response.incomplete") and "response.mcp_call.completed" in types(events)
    listing, call, *after = events[-1]["response"]["output"]
    assert listing["type"] == "mcp_list_tools" and call["type"] == "mcp_call" and call["name"] == "add" and after  # the model went on
    arguments = json.loads(call["arguments"])
    assert call["status"] == "completed" and call["output"] == str(arguments["a"] + arguments["b"])


def test_auto_tool_choice_yields_a_call_or_an_answer_never_raw_markup(local):
    for prompt in ("What is the weather in Paris?", "Tell me a joke."):
        body = create(local, model=MODEL, input=prompt, tools=[WEATHER], tool_choice="auto", temperature=0, max_output_tokens=60)
        item = body["output"][0]
        if item["type"] == "function_call":
            jsonschema.validate(json.loads(item["arguments"]), WEATHER["parameters"])
        else:
            assert not item["content"][0]["text"].lstrip().startswith("<tool_call>")


def test_tool_result_round_trip(local):
    first = create(local, model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required", temperature=0, max_output_tokens=60)
    call = first["output"][0]
    second = create(
        local,
        model=MODEL,
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": '{"temperature_c": 18, "sky": "clear"}'}],
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_output_tokens=30,
    )
    assert second["output"][0]["type"] == "message" and second["output"][0]["content"][0]["text"].strip()


def test_images_are_refused_clearly(local):
    import openai

    with pytest.raises(openai.BadRequestError) as error:
        local.responses.create(model=MODEL, input=[{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}])
    assert "text only" in error.value.body["message"]


def test_event_loop_stays_responsive_during_generation(local, local_gateway):
    """While the model generates, health checks and reads are answered before it finishes."""
    stored = create(local, model=MODEL, input="hi", max_output_tokens=16)["id"]
    seen_after_checks = 0
    with local.responses.stream(model=MODEL, input="Write a long essay about the sea.", temperature=0, max_output_tokens=300) as events:
        for event in events:
            if event.type == "response.output_text.delta":
                break
        for _ in range(10):
            with urllib.request.urlopen(local_gateway.url + "/health") as response:
                assert response.status == 200
            assert local.responses.retrieve(stored).id == stored
        for event in events:
            if event.type == "response.output_text.delta":
                seen_after_checks += 1
    assert seen_after_checks > 5  # the generation was still running when the checks were answered


def test_concurrent_requests_queue_and_all_complete(local):
    prompts = [f"Count to {n}." for n in (3, 4, 5)]
    with ThreadPoolExecutor(3) as pool:
        bodies = list(pool.map(lambda p: create(local, model=MODEL, input=p, temperature=0, max_output_tokens=16), prompts))
    assert all(body["status"] in ("completed", "incomplete") and body["output"] for body in bodies)


def test_disconnect_stops_generation(local_gateway):
    with socket.create_connection(("127.0.0.1", local_gateway.port)) as conn:
        body = json.dumps({"model": MODEL, "input": "Write a very long novel.", "stream": True, "max_output_tokens": 1500}).encode()
        conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while b"response.output_text.delta" not in received:
            received += conn.recv(65536)
    deadline = time.monotonic() + 20
    while "its client went away" not in local_gateway.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "its client went away" in local_gateway.logs()


def test_a_tool_call_cut_by_the_token_limit_stays_an_incomplete_call(local):
    body = create(local, model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required", temperature=0, max_output_tokens=16)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    [call] = body["output"]
    assert call["type"] == "function_call" and call["status"] == "incomplete" and call["name"] == "get_weather"


def test_long_tool_arguments_stream_while_generated(local):
    note = {
        "type": "function",
        "name": "save_note",
        "description": "Save a note",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": False},
    }
    events = stream(
        local,
        model=MODEL,
        input="Save a note saying that the team meeting moved to Thursday afternoon in room four.",
        tools=[note],
        tool_choice="required",
        temperature=0,
        max_output_tokens=80,
    )
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert len(deltas) > 1 and "".join(deltas) == done["arguments"]
    jsonschema.validate(json.loads(done["arguments"]), note["parameters"])


def test_sampling_knobs_reach_llama_cpp(local):
    knobs = {"seed": 3, "presence_penalty": 0.1, "frequency_penalty": 0.1}
    plain = create(local, model=MODEL, input="Count from 1 to 10: 1, 2, 3,", temperature=0, max_output_tokens=40, extra_body=knobs)
    assert "3" in plain["output"][0]["content"][0]["text"]  # this model answers "1, 2, 3."
    stopped = create(local, model=MODEL, input="Count from 1 to 10: 1, 2, 3,", temperature=0, max_output_tokens=40, extra_body={**knobs, "stop": [", 3"]})
    text = stopped["output"][0]["content"][0]["text"]
    assert stopped["status"] == "completed" and text.startswith("1") and "3" not in text  # cut at the stop sequence


def test_a_text_file_by_id_is_read_by_the_local_model_and_an_image_is_refused(local):
    notes = local.files.create(file=("notes.md", b"# Notes\nThe launch code is PELICAN-42. " * 20, "text/markdown"), purpose="user_data").id
    ask = [{"role": "user", "content": [{"type": "input_text", "text": "What is the launch code?"}, {"type": "input_file", "file_id": notes}]}]
    with_file = local.responses.input_tokens.count(model=MODEL, input=ask).input_tokens
    alone = local.responses.input_tokens.count(model=MODEL, input=ask[0]["content"][0]["text"]).input_tokens
    assert with_file - alone > 100  # the file's text (twenty lines of it) is in the prompt
    body = create(local, model=MODEL, input=ask, temperature=0, max_output_tokens=30)
    assert body["status"] in ("completed", "incomplete") and body["usage"]["input_tokens"] == with_file
    image = local.files.create(file=("pixel.png", b"\x89PNG\r\n\x1a\n", "image/png"), purpose="vision").id
    with pytest.raises(openai.BadRequestError) as refused:
        local.responses.create(model=MODEL, input=[{"role": "user", "content": [{"type": "input_image", "file_id": image}]}])
    assert refused.value.body["param"] == "input" and "text only" in refused.value.body["message"]


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_keyless_examples_in_the_readme_and_getting_started_run(local_gateway, page):
    """The first examples a newcomer meets run as written, on the local model with no key: the
    curl and the Python (with a `previous_response_id` chain), aimed at this gateway."""
    path = Path(__file__).resolve().parents[1] / page
    curl = next(block for block in _blocks(path, "sh") if "curl" in block and "local-smollm2" in block and "Authorization" not in block)
    python = next(block for block in _blocks(path, "python") if "local-smollm2" in block)
    here = lambda text: text.replace("http://127.0.0.1:8080", local_gateway.url)  # noqa: E731
    done = subprocess.run(["bash", "-c", here(curl)], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] in ("completed", "incomplete"), done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", here(python)], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
