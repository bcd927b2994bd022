"""Prompt templates: the `/v1/prompts` API, `prompts_dir` with SIGHUP, and `prompt` on
`POST /v1/responses` through the official SDK (Jinja2 in a sandbox, variables as text and as
content parts, versions, and every way it can be refused)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import httpx2 as httpx
import openai
import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import assert_envelope, create, stream, wait_until
from providers import models

GREETER = {
    "model": "mock-text",
    "temperature": 0.2,
    "instructions": "You greet {{ name }} in {{ language | default('English') }}.",
    "input": [{"role": "user", "content": "My name is {{ name }}."}],
}


def api(gateway, method: str, path: str, body: dict | None = None) -> httpx.Response:
    with httpx.Client(timeout=30) as http:
        return http.request(method, gateway.url + "/v1" + path, json=body)


def make(gateway, template: dict, prompt_id: str | None = None) -> dict:
    answer = api(gateway, "POST", "/prompts", {"template": template, **({"id": prompt_id} if prompt_id else {})})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_versions_through_the_api(store_gateway):
    gateway = store_gateway
    made = make(gateway, GREETER)
    assert made["id"].startswith("pmpt_") and made["version"] == made["default_version"] == "1" and made["object"] == "prompt"
    assert made["template"] == GREETER
    second = api(gateway, "POST", f"/prompts/{made['id']}/versions", {"template": {**GREETER, "temperature": 0.9}}).json()
    assert second["version"] == "2" and second["default_version"] == "1"  # not the default until set
    assert api(gateway, "GET", f"/prompts/{made['id']}").json()["version"] == "1"
    assert api(gateway, "GET", f"/prompts/{made['id']}?version=2").json()["template"]["temperature"] == 0.9
    assert api(gateway, "POST", f"/prompts/{made['id']}", {"default_version": "2"}).json()["version"] == "2"
    assert made["id"] in [prompt["id"] for prompt in api(gateway, "GET", "/prompts").json()["data"]]
    named = make(gateway, GREETER, "greeter-named")
    assert named["id"] == "greeter-named"
    taken = api(gateway, "POST", "/prompts", {"id": "greeter-named", "template": GREETER})
    assert taken.status_code == 409
    assert_envelope(taken.json(), "id", "prompt_exists")
    assert api(gateway, "DELETE", f"/prompts/{made['id']}").json() == {"id": made["id"], "object": "prompt.deleted", "deleted": True}
    assert api(gateway, "GET", f"/prompts/{made['id']}").status_code == 404
    assert api(gateway, "POST", f"/prompts/{named['id']}", {"default_version": "7"}).status_code == 404


def test_bad_templates_are_refused_when_saved(gateway):
    broken = api(gateway, "POST", "/prompts", {"template": {**GREETER, "input": [{"role": "user", "content": "line one\n{% if %}"}]}})
    assert broken.status_code == 400 and "line 2" in broken.json()["error"]["message"]
    assert_envelope(broken.json(), "template.input[0].content", "invalid_template")
    hot = api(gateway, "POST", "/prompts", {"template": {**GREETER, "temperature": 7}})
    assert hot.status_code == 400 and hot.json()["error"]["param"] == "template.temperature"
    nested = api(gateway, "POST", "/prompts", {"template": {**GREETER, "prompt": {"id": "x"}}})
    assert nested.status_code == 400 and nested.json()["error"]["param"] == "template.prompt"


def test_a_prompt_renders_into_the_request(gateway, client, fake_chat):
    made = make(gateway, GREETER)
    body = create(client, prompt={"id": made["id"], "variables": {"name": "Ada", "language": "Welsh"}}, input="And the weather?")
    sent = fake_chat.last()
    assert sent["model"] == "text" or sent["model"] == "mock-text"
    assert sent["messages"] == [
        {"role": "system", "content": "You greet Ada in Welsh."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "user", "content": "And the weather?"},
    ]
    assert sent["temperature"] == 0.2 and body["temperature"] == 0.2
    assert body["prompt"] == {"id": made["id"], "version": "1", "variables": {"name": "Ada", "language": "Welsh"}}
    assert body["instructions"] == "You greet Ada in Welsh."
    overridden = create(client, prompt={"id": made["id"], "variables": {"name": "Bo"}}, input="Hi", temperature=0.7, instructions="Be terse.")
    assert overridden["temperature"] == 0.7 and fake_chat.last()["messages"][0] == {"role": "system", "content": "Be terse."}
    events = stream(client, prompt={"id": made["id"], "version": "1", "variables": {"name": "Cy"}}, input="Hi")
    assert events[-1]["response"]["prompt"]["version"] == "1"


def test_parts_land_where_the_template_places_them(gateway, client, fake_chat):
    template = {
        "model": "mock-text",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Describe this for {{ who }}:"}, {"type": "input_text", "text": "{{ photo }}"}]}],
    }
    made = make(gateway, template)
    image = {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"}
    create(client, prompt={"id": made["id"], "variables": {"who": {"type": "input_text", "text": "a child"}, "photo": image}}, input="Thanks")
    parts = fake_chat.last()["messages"][0]["content"]
    assert parts == [
        {"type": "text", "text": "Describe this for a child:"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]
    inline = make(gateway, {"model": "mock-text", "input": [{"role": "user", "content": "Look: {{ photo }}"}]})
    with pytest.raises(openai.BadRequestError) as misplaced:
        client.responses.create(prompt={"id": inline["id"], "variables": {"photo": image}})
    assert misplaced.value.body["param"] == "prompt.variables.photo"


def test_refusals(gateway, client):
    made = make(gateway, GREETER)
    with pytest.raises(openai.BadRequestError) as missing:
        client.responses.create(prompt={"id": made["id"]}, input="Hi")
    assert_envelope(missing.value.response.json(), "prompt.variables.name", "missing_required_parameter")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(prompt={"id": "pmpt_nothing"}, input="Hi")
    assert unknown.value.body["param"] == "prompt.id"
    with pytest.raises(openai.NotFoundError) as no_version:
        client.responses.create(prompt={"id": made["id"], "version": "9", "variables": {"name": "A"}}, input="Hi")
    assert no_version.value.body["param"] == "prompt.version"
    with pytest.raises(openai.BadRequestError) as bad_variable:
        client.responses.create(prompt={"id": made["id"], "variables": {"name": 42}}, input="Hi")
    assert bad_variable.value.body["param"] == "prompt.variables.name"
    modelless = make(gateway, {"instructions": "Hi"})
    with pytest.raises(openai.BadRequestError) as no_model:
        client.responses.create(prompt={"id": modelless["id"]}, input="Hi")
    assert no_model.value.body["param"] == "model"
    assert create(client, prompt={"id": modelless["id"]}, input="Hi", model="mock-text")["status"] == "completed"  # the request names it


@pytest.mark.parametrize(
    "text, param",
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "instructions"),
        ("{{ cycler.__init__.__globals__.os }}", "instructions"),
        ("{{ name.__class__.__base__ }}", "instructions"),
        ("{{ range(10**9) | list }}", "instructions"),
        ("{{ 'x' * 10**9 }}", "instructions"),
        ("{{ '{:>999999999}'.format(name) }}", "instructions"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "prompt"),
        ("{{ ((7 ** 4096) ** 4096) is number }}", "prompt"),  # one C-level step of a minute: the cage's deadline
        ("{{ ('x'*999999)|replace('x','y'*1000)|length }}", "instructions"),  # a gigabyte: the cage's memory limit
        ("{{ ('%s' * 999999) % (('y'*999,) * 999999) }}", "instructions"),
        ("{{ ('y'*999999)|list|join('z'*1000) }}", "instructions"),
    ],
)
def test_sandbox_escapes_are_refused_in_bounded_time(gateway, client, text, param):
    made = make(gateway, {"model": "mock-text", "instructions": text})
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(prompt={"id": made["id"], "variables": {"name": "A"}}, input="Hi")
    assert time.monotonic() - started < 10
    assert_envelope(refused.value.response.json(), param, "template_not_allowed")


def test_a_template_that_runs_long_stalls_nobody_else(gateway, client):
    """The render runs in a worker process: while it burns its second, the gateway answers."""
    body = {"template": {"model": "m", "instructions": "{{ ((7 ** 4096) ** 4096) is number }}"}, "variables": {}}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        attack = pool.submit(api, gateway, "POST", "/console/prompts/preview", body)
        answered_meanwhile = 0
        with httpx.Client(timeout=30) as http:
            while not attack.done():
                assert http.get(gateway.url + "/health").status_code == 200
                answered_meanwhile += not attack.done()
                time.sleep(0.05)
        refused = attack.result()
    assert refused.status_code == 400
    assert_envelope(refused.json(), "prompt", "template_not_allowed")
    assert answered_meanwhile >= 3
    assert create(client, prompt={"id": make(gateway, GREETER)["id"], "variables": {"name": "Ada"}}, input="Hi")["status"] == "completed"


@pytest.mark.parametrize("model", models("text", remote_only=True))
def test_every_provider(providers_gateway, multi, fake_anthropic, fake_gemini, fake_responses, model):
    made = make(providers_gateway, {**GREETER, "model": model})
    body = create(multi, prompt={"id": made["id"], "variables": {"name": "Ada"}}, input="Hi")
    upstream = {"claude": fake_anthropic, "gemini": fake_gemini, "oai": fake_responses}[model.split("-")[0]]
    assert body["model"] == model and "You greet Ada in English." in str(upstream.last()) and "My name is Ada." in str(upstream.last())


def test_prompts_dir_and_sighup(fake_chat, tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "support.yaml").write_text(
        'versions:\n  "1":\n    model: mock-text\n    instructions: "Support for {{ product }}."\n'
        '  "2":\n    model: mock-text\n    instructions: "Support v2 for {{ product }}."\ndefault_version: "1"\n'
    )
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{tmp_path}/r.db", "prompts_dir": str(folder)}, tmp_path).start()
    try:
        client = sdk(gw)
        body = create(client, prompt={"id": "support", "variables": {"product": "Rejoinder"}}, input="Help")
        assert body["instructions"] == "Support for Rejoinder." and body["prompt"]["version"] == "1"
        assert api(gw, "POST", "/prompts/support/versions", {"template": GREETER}).status_code == 409  # files are edited, not the API
        (folder / "support.yaml").write_text('versions:\n  "3":\n    model: mock-text\n    instructions: "Support v3 for {{ product }}."\n')
        os.kill(gw.process.pid, signal.SIGHUP)
        assert wait_until(lambda: api(gw, "GET", "/prompts/support").json().get("version") == "3")
        assert create(client, prompt={"id": "support", "variables": {"product": "X"}}, input="Help")["instructions"] == "Support v3 for X."
        (folder / "support.yaml").write_text("versions: [not, a, mapping]\n")  # broken: the loaded version stays
        os.kill(gw.process.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert api(gw, "GET", "/prompts/support").json()["version"] == "3" and "support.yaml was not loaded" in gw.logs()
    finally:
        gw.stop()


CITY = {
    "type": "json_schema",
    "name": "city",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
        "required": ["city", "temperature_c"],
        "additionalProperties": False,
    },
}


def test_output_that_misses_the_schema_is_generated_again(gateway, client, fake_chat):
    made = make(gateway, {"model": "mock-json-flaky", "instructions": "Weather as JSON.", "text": {"format": CITY}, "retries": 2})
    fake_chat.flaky = 0
    calls = len(fake_chat.requests)
    body = create(client, prompt={"id": made["id"]}, input="Paris?")
    assert json.loads(body["output"][0]["content"][0]["text"]) == {"city": "Paris", "temperature_c": 21}
    assert len(fake_chat.requests) == calls + 2  # the first answer missed the schema
    fake_chat.flaky = 0
    events = stream(client, prompt={"id": made["id"]}, input="Paris?")
    assert json.loads(events[-1]["response"]["output"][0]["content"][0]["text"])["city"] == "Paris"
    stubborn = make(gateway, {"model": "mock-text", "text": {"format": CITY}, "retries": 1})
    calls = len(fake_chat.requests)
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(prompt={"id": stubborn["id"]}, input="Paris?")
    assert failed.value.status_code == 502 and failed.value.body["code"] == "invalid_model_output" and "not JSON" in failed.value.body["message"]
    assert len(fake_chat.requests) == calls + 2
