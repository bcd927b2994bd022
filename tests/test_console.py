"""The web console in a real browser: Playwright driving Debian's Chromium (headless, no browser
download) against the real gateway and the fake Chat Completions upstream. Every page a test
visits must load without a console error, an uncaught exception or a failed request, and each
page is photographed at a desktop and a phone viewport, light and dark (`bench/screenshots/`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import chat_models
from gateway import Gateway
from helpers import wait_until
from test_projects import MASTER

playwright = pytest.importorskip("playwright.sync_api")
SHOTS = Path(__file__).resolve().parents[1] / "bench" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def console_gateway(fake_chat, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console")
    models = [{**model, "price": {"input": 2500.0, "output": 10000.0, "cached_input": 1250.0}} for model in chat_models(fake_chat)]  # a cent a request or so
    models.append({"name": "local-smollm2", "provider": "local", "local": {"context_tokens": 2048, "threads": 2}})  # loaded at its first use
    gw = Gateway({"models": models, "database_url": f"sqlite:///{workdir}/r.db", "master_key": MASTER}, workdir).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=_chromium(), headless=True)
        yield launched
        launched.close()


class Console:
    """One signed-in browser tab; `problems` collects every console error, page error and
    failed request, and each test ends by finding it empty."""

    def __init__(self, browser, gw: Gateway, key: str | None, viewport: str = "desktop", scheme: str = "light") -> None:
        """A tab on the console, signed in with `key` (None: left on the sign-in page)."""
        self.gw = gw
        self.context = browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=scheme)
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.problems: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(f"console: {message.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url} {request.failure}"))
        self.page.goto(gw.url + "/console")
        self.page.get_by_label("API key").wait_for()
        if key is not None:
            self.sign_in(key)

    def sign_in(self, key: str) -> None:
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Playground").wait_for()

    def visit(self, hash_: str) -> None:
        """Go to a page (`#/name[/id]`) and wait until its heading shows."""
        self.page.goto(f"{self.gw.url}/console#/{hash_}")
        self.page.wait_for_function(
            "(name) => document.querySelector('nav a[aria-current=page]')?.getAttribute('href') === '#/' + name", arg=hash_.split("/")[0]
        )
        self.page.locator("main h1").first.wait_for()
        self.page.wait_for_load_state("networkidle")

    def run(self, model: str, text: str, tools: str | None = None, tool_choice: str | None = None) -> None:
        """Fill the playground's form and press Run."""
        self.page.get_by_label("Model").select_option(model)
        self.page.get_by_label("Input").fill(text)
        if tools is not None:
            self.page.get_by_label("Tools (JSON: function and MCP tools)").fill(tools)
        if tool_choice is not None:
            self.page.get_by_label("Tool choice").select_option(tool_choice)
        self.page.get_by_role("button", name="Run").click()

    def shoot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SHOTS / f"{name}.png", full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.problems == []


def admin_key(gw: Gateway, project: str = "Console") -> str:
    headers = {"Authorization": f"Bearer {MASTER}"}
    made = httpx.post(gw.url + "/v1/organization/projects", json={"name": project}, headers=headers).json()
    return httpx.post(f"{gw.url}/v1/organization/projects/{made['id']}/api_keys", json={"name": "console"}, headers=headers).json()["value"]


def test_the_playground_streams_with_its_event_timeline_and_goes_on(browser, console_gateway, fake_chat):
    console = Console(browser, console_gateway, admin_key(console_gateway))
    page = console.page
    page.get_by_label("Model").select_option("chat")
    page.get_by_label("Instructions").fill("Be kind.")
    page.get_by_label("Input").fill("Say hello")
    page.get_by_role("button", name="Run").click()
    page.locator(".chat").get_by_text("Hello, world!", exact=True).first.wait_for()
    timeline = page.get_by_label("Event timeline")
    timeline.get_by_text("response.completed", exact=True).wait_for()
    types = timeline.locator("summary span:nth-child(2)").all_inner_texts()
    assert types[0] == "response.created" and types[-1] == "response.completed" and types.count("response.output_text.delta") >= 2
    first_id = page.locator(".chat a").first.inner_text()
    page.get_by_text("Code for this run").click()
    assert '"input":"Say hello"' in page.get_by_label("curl").text_content() and "client.responses.create(" in page.get_by_label("Python").text_content()
    # the chat goes on through previous_response_id
    page.get_by_label("Input").fill("And again")
    page.get_by_role("button", name="Run").click()
    page.locator(".chat a").nth(1).wait_for()
    assert f'"previous_response_id":"{first_id}"' in page.get_by_label("curl").text_content()
    sent = fake_chat.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["Say hello", "And again"]
    console.shoot("playground-desktop-light")
    console.close()


def test_a_tool_call_is_a_card_that_takes_its_output(browser, console_gateway):
    console = Console(browser, console_gateway, admin_key(console_gateway))
    page = console.page
    page.get_by_label("Model").select_option("chat")
    page.get_by_label("Input").fill("Weather in Paris?")
    tool = '[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]'
    page.get_by_label("Tools (JSON: function and MCP tools)").fill(tool)
    page.evaluate("document.querySelector('form.panel select').append(new Option('mock-tool-single', 'mock-tool-single'))")
    page.get_by_label("Model").select_option("mock-tool-single")
    page.get_by_role("button", name="Run").click()
    card = page.locator(".card").first
    card.get_by_text("function call: get_weather").wait_for()
    assert "Paris" in card.locator("pre").first.inner_text()
    card.get_by_label("Tool output").fill("Sunny, 21°C")
    page.get_by_label("Model").select_option("chat")
    card.get_by_role("button", name="Send output").click()
    page.locator(".chat a").nth(1).wait_for()
    console.close()


def test_stored_responses_and_conversations(browser, console_gateway):
    key = admin_key(console_gateway, "Stored")
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(console_gateway.url + "/v1/responses", json={"model": "chat", "input": "Stored once"}, headers=headers).json()
    then = httpx.post(
        console_gateway.url + "/v1/responses", json={"model": "mock-text", "input": "Another", "previous_response_id": made["id"]}, headers=headers
    ).json()
    conversation = httpx.post(
        console_gateway.url + "/v1/conversations", json={"items": [{"type": "message", "role": "user", "content": "Hi there"}]}, headers=headers
    ).json()
    console = Console(browser, console_gateway, key)
    page = console.page
    console.visit("responses")
    playwright.expect(page.locator("tbody tr")).to_have_count(2)  # this project's two, not the other tests' responses
    page.get_by_label("Model").fill("chat")
    page.get_by_role("button", name="Filter").click()
    playwright.expect(page.locator("tbody tr")).to_have_count(1)
    page.locator("tbody tr").first.click()
    page.get_by_role("heading", name="Output").wait_for()
    assert "Stored once" in page.locator("main").inner_text() and "Hello, world!" in page.locator("main").inner_text()
    page.get_by_role("link", name=then["id"]).wait_for()  # the chain after it
    console.shoot("response-desktop-light")
    console.visit("conversations")
    page.get_by_text(conversation["id"]).click()
    page.get_by_text("Hi there", exact=True).wait_for()
    page.get_by_label("Metadata (JSON)").fill('{"topic": "greetings"}')
    page.get_by_role("button", name="Save metadata").click()
    page.get_by_text("Saved.").wait_for()
    assert httpx.get(f"{console_gateway.url}/v1/conversations/{conversation['id']}", headers=headers).json()["metadata"] == {"topic": "greetings"}
    console.visit(f"responses/{made['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("heading", name="Responses").wait_for()
    assert httpx.get(f"{console_gateway.url}/v1/responses/{made['id']}", headers=headers).status_code == 404
    console.close()


def test_a_prompt_version_is_previewed_compared_and_used(browser, console_gateway, fake_chat):
    console = Console(browser, console_gateway, admin_key(console_gateway, "Prompted"))
    page = console.page
    console.visit("prompts")
    page.get_by_label("Id").fill("greeter")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="greeter").wait_for()
    preview = page.get_by_label("Rendered")
    preview.wait_for()
    assert "You are a librarian." in preview.inner_text() and "Tell me about maps." in preview.inner_text()
    template = page.get_by_label("Template (edit, then save as a new version)")
    template.fill(template.input_value().replace("Answer briefly.", "Answer in one line."))
    page.get_by_role("button", name="Save as new version").click()
    page.get_by_text("Default version 1 of 2").wait_for()
    changed = [line for line in page.get_by_label("Difference").inner_text().splitlines() if line[:1] in "+-"]
    assert [line[0] for line in changed] == ["-", "+"] and "Answer briefly." in changed[0] and "Answer in one line." in changed[1]
    page.get_by_label("Default version").select_option("2")
    page.get_by_role("button", name="Set default").click()
    page.get_by_text("Default version 2 of 2").wait_for()
    console.shoot("prompt-desktop-light")
    console.visit("playground")
    page.get_by_label("Model").select_option("chat")
    page.get_by_label("Prompt").fill("greeter")
    page.get_by_label("Variables (JSON)").fill('{"persona": "a pilot", "topic": "clouds"}')
    page.get_by_role("button", name="Run").click()
    page.locator(".chat").get_by_text("Hello, world!", exact=True).first.wait_for()
    sent = fake_chat.requests[-1]["messages"]
    assert sent[0]["content"] == "You are a pilot. Answer in one line." and sent[1]["content"] == "Tell me about clouds."
    console.close()


def test_keys_are_made_once_and_revoked(browser, console_gateway):
    console = Console(browser, console_gateway, MASTER)
    page = console.page
    console.visit("keys")
    page.get_by_label("Name").fill("Console team")
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name="Console team").wait_for()
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_label("Allowed models (comma-separated)", exact=True).fill("chat, mock-*")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New key")
    secret.wait_for()
    value = secret.inner_text()
    assert value.startswith("sk-rj-")
    assert httpx.get(console_gateway.url + "/v1/models", headers={"Authorization": f"Bearer {value}"}).status_code == 200
    console.shoot("keys-desktop-light")
    page.get_by_text("Edit project").click()
    page.get_by_label("Project's requests per minute").fill("")  # lifted
    page.get_by_label("Project's tokens per minute").fill("5000")
    page.get_by_role("button", name="Save project").click()
    page.get_by_text("tpm 5000").wait_for()
    project = next(
        p
        for p in httpx.get(console_gateway.url + "/v1/organization/projects?limit=100", headers={"Authorization": f"Bearer {MASTER}"}).json()["data"]
        if p["name"] == "Console team"
    )
    assert project.get("rpm") is None and project["tpm"] == 5000
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("No keys yet.").wait_for()
    assert httpx.get(console_gateway.url + "/v1/models", headers={"Authorization": f"Bearer {value}"}).status_code == 401
    console.close()


def test_usage_is_plotted(browser, console_gateway):
    headers = {"Authorization": f"Bearer {MASTER}"}
    for _ in range(3):
        httpx.post(console_gateway.url + "/v1/responses", json={"model": "chat", "input": "Count me"}, headers=headers)
    team = {"Authorization": f"Bearer {admin_key(console_gateway, 'Usage team')}"}
    httpx.post(console_gateway.url + "/v1/responses", json={"model": "chat", "input": "Count me too"}, headers=team)

    def recorded() -> bool:  # the master key's three and the team's one, in the usage records
        rows = httpx.get(console_gateway.url + "/v1/organization/usage?group_by=key_id", headers=headers).json()["data"]
        return any(row["key_id"] == "" and row["requests"] >= 3 for row in rows) and len([row for row in rows if row["key_id"]]) >= 1

    assert wait_until(recorded, 10)
    console = Console(browser, console_gateway, MASTER)
    console.visit("usage")
    charts = console.page.locator("svg.chart")
    charts.first.wait_for()
    assert charts.count() == 6 and console.page.locator("svg.chart rect").count() >= 6
    assert "chat" in console.page.get_by_role("table").first.inner_text()  # latency percentiles from /metrics
    by_key = console.page.get_by_role("table").last.inner_text()
    (master,) = [line for line in by_key.splitlines() if "(master key)" in line]
    cost = float(re.search(r"\$(\d+\.\d{4})$", master).group(1))
    assert "Cached" in by_key and cost >= 0.4275  # its 3 requests at least, at the model's price (57 in, 12 of them cached, 30 out)
    assert "Usage team\tconsole (Usage team)\t1\t" in by_key  # names, not ids
    assert "$" in console.page.get_by_label(re.compile("^Cost per day, \\$")).get_attribute("aria-label")
    errors = console.page.locator("figure", has=console.page.get_by_text("Errors per day")).locator(".legend span").all_inner_texts()
    assert "chat" not in errors  # a model with no errors has no legend there
    console.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_renders_cleanly(browser, console_gateway, viewport, scheme):
    console = Console(browser, console_gateway, MASTER, viewport, scheme)
    for name in ("playground", "responses", "conversations", "prompts", "keys", "usage"):
        console.visit(name)
        console.page.locator("main h1").first.wait_for()
        console.page.wait_for_function("document.querySelector('main').innerText.trim().split('\\n').length > 1")  # filled, not just its heading
        console.shoot(f"{name}-{viewport}-{scheme}")
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORTS[viewport]["width"] + 1  # nothing runs off the side
    console.close()


def test_the_consoles_own_calls_keep_to_the_keys_project(console_gateway):
    ours, theirs = ({"Authorization": f"Bearer {admin_key(console_gateway, name)}"} for name in ("Mine", "Not mine"))
    url = console_gateway.url
    made = httpx.post(url + "/v1/responses", json={"model": "chat", "input": "Mine"}, headers=ours).json()
    httpx.post(url + "/v1/conversations", json={}, headers=ours)
    httpx.post(url + "/v1/prompts", json={"id": "mine-only", "template": {"instructions": "Hi {{ who }}"}}, headers=ours)
    assert [r["id"] for r in httpx.get(url + "/v1/console/responses", headers=ours).json()["data"]] == [made["id"]]
    assert httpx.get(url + "/v1/console/responses", headers=theirs).json()["data"] == []
    assert httpx.get(url + "/v1/console/conversations", headers=theirs).json()["data"] == []
    assert len(httpx.get(url + "/v1/console/conversations", headers=ours).json()["data"]) == 1
    assert httpx.get(url + "/v1/console/prompts/mine-only/versions", headers=theirs).status_code == 404
    assert [v["version"] for v in httpx.get(url + "/v1/console/prompts/mine-only/versions", headers=ours).json()["data"]] == ["1"]
    me = httpx.get(url + "/v1/console/me", headers=ours).json()
    assert me["admin"] is False and me["project"].startswith("proj_") and me["key_id"].startswith("key_")
    preview = httpx.post(url + "/v1/console/prompts/preview", json={"template": {"instructions": "Hi {{ who }}"}, "variables": {"who": "Ada"}}, headers=ours)
    assert preview.json() == {"instructions": "Hi Ada", "input": []}
    broken = httpx.post(url + "/v1/console/prompts/preview", json={"template": {"instructions": "{% for %}"}}, headers=ours)
    assert broken.status_code == 400 and broken.json()["error"]["param"] == "template.instructions"
    bad = httpx.get(url + "/v1/console/responses?status=nope&limit=5", headers=ours)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"
    assert httpx.get(url + "/v1/console/responses").status_code == 401
    assert httpx.get(url + "/console").headers["content-type"].startswith("text/html")  # the page itself needs no key


def test_the_root_and_console_slash_lead_to_the_console(gateway):
    for path in ("/", "/console/"):
        answer = httpx.get(gateway.url + path, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == "/console", path
    assert httpx.get(gateway.url + "/", follow_redirects=True).text.lstrip().lower().startswith("<!doctype html>")
    banner = gateway.log.read_text()
    assert f"console: {gateway.url}/console (open: no master key is set" in banner


def test_the_nav_is_hidden_until_sign_in(browser, console_gateway):
    console = Console(browser, console_gateway, None)
    page = console.page
    assert not page.locator("#nav").is_visible() and not page.get_by_role("link", name="Keys").is_visible()
    assert not page.get_by_role("button", name="Sign out").is_visible()
    assert not page.get_by_text("This gateway is open.").is_visible()  # it has a master key
    console.sign_in(MASTER)
    page.get_by_role("link", name="Keys").wait_for()
    assert not page.get_by_text("open gateway").is_visible()
    console.close()


def test_signing_out_leaves_nothing_for_the_next_user(browser, console_gateway):
    console = Console(browser, console_gateway, admin_key(console_gateway, "First user"))
    page = console.page
    console.run("chat", "My secret plans")
    page.locator(".chat a").first.wait_for()
    page.get_by_role("button", name="Sign out").click()
    console.sign_in(admin_key(console_gateway, "Second user"))
    assert "My secret plans" not in page.locator("main").inner_text() and page.locator(".chat > *").count() == 0
    console.run("chat", "Hello from the second")
    page.locator(".chat a").first.wait_for()  # a chat of its own: no previous_response_id of the first user's
    page.get_by_text("Code for this run").click()
    assert "previous_response_id" not in page.get_by_label("curl").text_content()
    assert page.locator(".chat .error").count() == 0
    console.close()


def test_an_open_gateway_says_so_and_lets_its_user_in(browser, gateway):
    console = Console(browser, gateway, None)
    page = console.page
    page.get_by_text("This gateway is open.").wait_for()
    assert "REJOINDER_MASTER_KEY" in page.locator(".notice").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "open-gateway-desktop-light.png", full_page=True)
    page.get_by_role("button", name="Continue as admin").click()
    page.get_by_role("heading", name="Playground").wait_for()
    assert page.get_by_text("open gateway").is_visible() and page.get_by_role("link", name="Keys").is_visible()
    console.close()


# For each word of each cell: does it sit on one line? (A word broken mid-way has two boxes; a
# line may end after a hyphen, as text does.)
_BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll("main td, main th")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/[^\\s-]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""


def test_no_table_cell_breaks_a_word_at_desktop_width(browser, console_gateway):
    """Crowded tables (long names, many allowed models, long outputs) at 1280 px: cells wrap
    between words only."""
    key = admin_key(console_gateway, "Tables")
    crowded = {
        "name": "Interdepartmental procurement reconciliation",
        "allowed_models": [f"model-family-number-{i}*" for i in range(12)],
        "rpm": 600,
        "tpm": 100000,
        "budget": 50,
    }
    made = httpx.post(console_gateway.url + "/v1/organization/projects", json=crowded, headers={"Authorization": f"Bearer {MASTER}"}).json()
    httpx.post(
        f"{console_gateway.url}/v1/organization/projects/{made['id']}/api_keys",
        json={"name": "continuous-integration-deployment-pipeline", **{k: v for k, v in crowded.items() if k != "name"}},
        headers={"Authorization": f"Bearer {MASTER}"},
    )
    httpx.post(console_gateway.url + "/v1/responses", json={"model": "chat", "input": "Fill a row"}, headers={"Authorization": f"Bearer {key}"})
    master = {"Authorization": f"Bearer {MASTER}"}
    httpx.post(console_gateway.url + "/v1/responses", json={"model": "chat", "input": "Fill a row"}, headers=master)
    httpx.post(console_gateway.url + "/v1/prompts", json={"id": "a-rather-long-prompt-name", "template": {"instructions": "Hi"}}, headers=master)
    assert wait_until(lambda: httpx.get(console_gateway.url + "/v1/organization/usage?group_by=key_id", headers=master).json()["data"], 10)
    console = Console(browser, console_gateway, MASTER)
    for name in ("responses", "keys", "prompts", "usage"):
        console.visit(name)
        console.page.locator("main table").first.wait_for()
        assert console.page.evaluate(_BROKEN_WORDS) == [], name
    console.visit("keys")
    console.page.get_by_role("link", name=crowded["name"]).click()
    console.page.get_by_role("heading", name=crowded["name"]).wait_for()
    console.page.locator("main table").first.wait_for()
    assert console.page.evaluate(_BROKEN_WORDS) == []
    console.close()


def test_long_ids_and_event_json_stay_inside_their_panels(browser, console_gateway):
    console = Console(browser, console_gateway, admin_key(console_gateway, "Overflow"))
    page = console.page
    page.get_by_label("Model").select_option("chat")
    page.get_by_label("Input").fill("x" * 300)  # one word longer than the panel
    page.get_by_role("button", name="Run").click()
    page.get_by_label("Event timeline").get_by_text("response.completed", exact=True).click()
    page.locator(".timeline details[open] pre").wait_for()
    spilled = page.evaluate(
        """() => [...document.querySelectorAll("section.panel, .chat, .timeline pre, .msg")]
              .filter((node) => node.scrollWidth > node.clientWidth + 1).map((node) => node.className || node.tagName)"""
    )
    assert spilled == []
    console.close()


def test_a_conversation_reads_as_messages_and_calls_with_their_outputs(browser, console_gateway):
    key = admin_key(console_gateway, "Readable")
    headers = {"Authorization": f"Bearer {key}"}
    url = console_gateway.url
    conversation = httpx.post(url + "/v1/conversations", json={}, headers=headers).json()["id"]
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    called = httpx.post(
        url + "/v1/responses", json={"model": "mock-call-weather", "input": "Weather in Paris?", "tools": [tool], "conversation": conversation}, headers=headers
    ).json()
    call = next(item for item in called["output"] if item["type"] == "function_call")
    answered = httpx.post(
        url + "/v1/responses",
        json={
            "model": "mock-call-weather",
            "tools": [tool],
            "conversation": conversation,
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'}],
        },
        headers=headers,
    ).json()
    assert answered["status"] == "completed"
    console = Console(browser, console_gateway, key)
    page = console.page
    console.visit(f"conversations/{conversation}")
    page.locator(".item").first.wait_for()
    whos = page.locator(".item .who").all_inner_texts()
    assert [who.lower() for who in whos] == ["user", "function call", "assistant"]  # the output sits with its call
    call_card = page.locator(".item.call")
    assert "get_weather" in call_card.inner_text() and '"city": "Paris"' in call_card.get_by_label("Arguments").inner_text()
    assert '"sky": "sunny"' in call_card.get_by_label("Output").inner_text()
    call_card.get_by_text("JSON").click()
    assert call["call_id"] in call_card.locator("details pre").inner_text()
    console.shoot("conversation-desktop-light")
    console.visit(f"responses/{called['id']}")
    page.locator(".item.call").wait_for()
    assert "Weather in Paris?" in page.locator(".item").first.inner_text()
    console.close()


def test_tool_choice_is_chosen_in_the_playground(browser, console_gateway, fake_chat):
    console = Console(browser, console_gateway, admin_key(console_gateway, "Choosing"))
    page = console.page
    tool = '[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]'
    console.run("chat", "Weather?", tool, "function:get_weather")
    page.locator(".chat a").first.wait_for()
    assert fake_chat.requests[-1]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    console.run("chat", "Again", tool_choice="required")
    page.locator(".chat a").nth(1).wait_for()
    assert fake_chat.requests[-1]["tool_choice"] == "required"
    console.close()


def test_the_local_model_makes_a_tool_card_when_a_call_is_required(browser, console_gateway):
    """The case the playground could not show before it had a tool_choice control: the small
    local model answers in text unless made to call, and `required` makes it call."""
    console = Console(browser, console_gateway, admin_key(console_gateway, "Local tools"))
    tool = '[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]'
    console.run("local-smollm2", "What is the weather in Paris?", tool, "required")
    card = console.page.locator(".card").first
    card.get_by_text("function call: get_weather").wait_for(timeout=90_000)
    card.get_by_label("Tool output").wait_for()  # a finished call, waiting for its output
    console.close()


def test_a_new_key_has_a_copy_button(browser, console_gateway):
    console = Console(browser, console_gateway, MASTER)
    console.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_gateway.url)
    page = console.page
    console.visit("keys")
    page.get_by_label("Name").fill("Copying")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name="Copying").wait_for()
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_role("button", name="Create key").click()
    value = page.get_by_label("New key").inner_text()
    page.get_by_role("button", name="Copy key").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == value
    console.close()


def test_a_saved_prompt_version_stays_in_the_editor_with_its_variables(browser, console_gateway):
    console = Console(browser, console_gateway, admin_key(console_gateway, "Editing"))
    page = console.page
    console.visit("prompts")
    page.get_by_label("Id").fill("editor")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("Rendered").wait_for()
    page.get_by_label("Variables (JSON)").fill('{"persona": "a sailor", "topic": "knots"}')
    page.get_by_label("Rendered").get_by_text("You are a sailor.").wait_for()
    template = page.get_by_label("Template (edit, then save as a new version)")
    template.fill(template.input_value().replace("Answer briefly.", "Answer at length."))
    page.get_by_role("button", name="Save as new version").click()
    page.get_by_text("editing version 2").wait_for()
    assert "Answer at length." in page.get_by_label("Template (edit, then save as a new version)").input_value()
    assert "a sailor" in page.get_by_label("Variables (JSON)").input_value()
    page.get_by_label("Rendered").get_by_text("You are a sailor. Answer at length.").wait_for()
    console.close()
