"""What a turn costs: Anthropic prompt-cache breakpoints on the wire (a plain turn, a chain, a
conversation, a prompt template, an MCP round), against a fake that caches by Anthropic's rules;
usage that sums every upstream call (retries, steering, compaction); and prices that know the
cache, in budgets and the usage records."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from conftest import ANTHROPIC_KEY, GEMINI_KEY, chat_models, sdk
from gateway import Gateway
from helpers import create, stream, wait_until
from test_mcp import docs, mcp_server, stats  # noqa: F401  (a fixture)
from test_projects import MASTER, Admin

# A stable prefix the fake counts as about 1,500 tokens: past Anthropic's 1,024-token minimum.
INSTRUCTIONS = "You are a careful coding agent. Follow the repository's conventions. " * 90
SHELL = {
    "type": "function",
    "name": "exec_command",
    "description": "Run a command",
    "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}},
}
PRICE = {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write": 3.75, "web_search": 10.0}


@pytest.fixture(scope="module")
def cached(fake_anthropic, fake_gemini, fake_chat, mcp_server, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("caching")
    anthropic = {"provider": "anthropic", "base_url": fake_anthropic.url + "/v1", "api_key": ANTHROPIC_KEY, "price": PRICE}
    models = [
        {"name": "claude-*", **anthropic},
        {"name": "cold-*", **anthropic, "prompt_caching": "off"},
        {"name": "gemini-*", "provider": "gemini", "base_url": fake_gemini.url + "/v1beta", "api_key": GEMINI_KEY, "prompt_caching": "cached_contents"},
        *chat_models(fake_chat),
    ]
    config = {"models": models, "database_url": f"sqlite:///{workdir}/r.db", "master_key": MASTER, "mcp_allow_hosts": [mcp_server.removeprefix("http://")]}
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(cached):
    return sdk(cached, MASTER)


def recorded(gateway: Gateway, key_id: str) -> dict:
    """A key's row of today's usage records (empty until the counts are written)."""
    report = httpx.get(gateway.url + "/v1/organization/usage?group_by=key_id", headers={"Authorization": f"Bearer {MASTER}"}).json()
    return next((row for row in report["data"] if row["key_id"] == key_id), {})


def marks(body: dict) -> list[str]:
    """Where a Messages API body carries breakpoints: `tool:<name>`, `system`, or
    `<message index>.<block index>:<type>`, in Anthropic's order; each with its ttl."""
    found = [f"tool:{tool['name']}" for tool in body.get("tools", ()) if "cache_control" in tool]
    if isinstance(body.get("system"), list):
        found += ["system" for block in body["system"] if "cache_control" in block]
    for m, message in enumerate(body["messages"]):
        found += [f"{m}.{b}:{block['type']}" for b, block in enumerate(message["content"]) if "cache_control" in block]
    return found


def controls(body: dict) -> list[dict]:
    return [
        block["cache_control"]
        for block in [
            *body.get("tools", ()),
            *(body["system"] if isinstance(body.get("system"), list) else ()),
            *(b for m in body["messages"] for b in m["content"]),
        ]
        if "cache_control" in block
    ]


def test_a_plain_turn_marks_its_stable_prefix_and_its_end_and_the_next_reads_them(client, fake_anthropic):
    first = create(client, model="claude-text", instructions=INSTRUCTIONS, input="Summarize the repository.")
    sent = fake_anthropic.last()
    assert marks(sent) == ["system", "0.0:text"] and controls(sent) == [{"type": "ephemeral"}] * 2
    assert sent["system"][0]["text"] == INSTRUCTIONS
    details = first["usage"]["input_tokens_details"]
    assert details["cached_tokens"] == 0 and details["cache_write_tokens"] > 1000
    again = create(client, model="claude-text", instructions=INSTRUCTIONS, input="Summarize the repository.")
    assert again["usage"]["input_tokens_details"]["cached_tokens"] == details["cache_write_tokens"]  # the whole prefix, read back
    other = create(client, model="claude-text", instructions=INSTRUCTIONS, input="List the tests.")
    usage = other["usage"]
    assert 1000 < usage["input_tokens_details"]["cached_tokens"] < details["cache_write_tokens"]  # the instructions only
    assert usage["input_tokens"] >= usage["input_tokens_details"]["cached_tokens"] + usage["input_tokens_details"]["cache_write_tokens"]


def test_a_short_prompt_spends_no_breakpoint(client, fake_anthropic):
    create(client, model="claude-text", instructions="Be brief.", input="Hi")
    assert marks(fake_anthropic.last()) == [] and isinstance(fake_anthropic.last()["system"], str)


def test_a_chain_reads_back_what_its_previous_turn_wrote(client, fake_anthropic):
    """A Codex-like loop: each turn's call ends where the next one's history has its
    previous-call breakpoint, so from the second turn on the whole history is a cache read."""
    turn = create(client, model="claude-agent", instructions=INSTRUCTIONS, input="Fix the failing tests.", tools=[SHELL])
    assert marks(fake_anthropic.last()) == ["system", "0.0:text"]
    reads = []
    for step in range(3):
        call = next(item for item in turn["output"] if item["type"] == "function_call")
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": f"step {step}: " + "ok " * 200}
        turn = create(client, model="claude-agent", instructions=INSTRUCTIONS, input=[output], tools=[SHELL], previous_response_id=turn["id"])
        sent = fake_anthropic.last()
        last = len(sent["messages"]) - 1
        assert marks(sent) == [
            "system",
            f"{last - 2}.{len(sent['messages'][last - 2]['content']) - 1}:{sent['messages'][last - 2]['content'][-1]['type']}",
            f"{last}.0:tool_result",
        ]
        details = turn["usage"]["input_tokens_details"]
        reads.append(details["cached_tokens"] / turn["usage"]["input_tokens"])
    assert min(reads) > 0.6 and reads == sorted(reads)  # the history read back grows with each turn


def test_a_conversation_and_a_prompt_template_are_cached_like_a_chain(client, cached, fake_anthropic):
    conversation = client.conversations.create()
    first = create(client, model="claude-text", instructions=INSTRUCTIONS, input="First question.", conversation=conversation.id)
    second = create(client, model="claude-text", instructions=INSTRUCTIONS, input="Second question.", conversation=conversation.id)
    sent = fake_anthropic.last()
    assert marks(sent) == ["system", "0.0:text", "2.0:text"]  # the first turn's end, and this one's
    assert second["usage"]["input_tokens_details"]["cached_tokens"] == first["usage"]["input_tokens"]  # all of the first turn's input
    template = httpx.post(
        cached.url + "/v1/prompts",
        json={"template": {"model": "claude-text", "instructions": INSTRUCTIONS + "{{ flavour }}"}},
        headers={"Authorization": f"Bearer {MASTER}"},
    ).json()
    for question in ("Why?", "How?"):
        answered = create(client, prompt={"id": template["id"], "variables": {"flavour": "Be terse."}}, input=question)
        assert marks(fake_anthropic.last()) == ["system", "0.0:text"]
    assert answered["usage"]["input_tokens_details"]["cached_tokens"] > 1000  # the rendered instructions, read back


def test_an_mcp_round_reads_the_first_call_back_and_counts_both(client, fake_anthropic, mcp_server):  # noqa: F811
    before = len(fake_anthropic.requests)
    response = create(client, model="claude-mcp-add", instructions=INSTRUCTIONS, input="What is 2 + 3?", tools=[docs(mcp_server)])
    first, second = fake_anthropic.requests[before:]
    assert marks(first) == ["system", "0.0:text"] and marks(second) == ["system", "0.0:text", "2.0:tool_result"]
    assert response["output"][-1]["content"][0]["text"] == "The tool said: 5"
    usage = response["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] > 1000  # the second call read what the first wrote
    assert usage["input_tokens"] > 2 * 1000  # both calls' input, each past the cached prefix
    assert stats(mcp_server)["methods"]["tools/call"] >= 1


def test_the_clients_own_breakpoints_and_options(client, fake_anthropic):
    text = [
        {"type": "input_text", "text": "Reference: " + "the spec says so. " * 400, "prompt_cache_breakpoint": {"mode": "explicit"}},
        {"type": "input_text", "text": "Question?"},
    ]
    options = {"ttl": "30m", "mode": "explicit"}
    body = create(
        client, model="claude-text", instructions=INSTRUCTIONS, input=[{"role": "user", "content": text}], extra_body={"prompt_cache_options": options}
    )
    assert marks(fake_anthropic.last()) == ["0.0:text"] and controls(fake_anthropic.last()) == [{"type": "ephemeral", "ttl": "1h"}]
    assert body["prompt_cache_options"] == options
    stored = client.responses.input_items.list(body["id"]).model_dump(exclude_none=True)["data"][0]["content"][0]
    assert stored["prompt_cache_breakpoint"] == {"mode": "explicit"}
    create(client, model="claude-text", instructions=INSTRUCTIONS, input=[{"role": "user", "content": text}], prompt_cache_retention="24h")
    assert marks(fake_anthropic.last()) == ["system", "0.0:text", "0.1:text"]  # implicit: the gateway's marks and the client's
    assert {control["ttl"] for control in controls(fake_anthropic.last())} == {"1h"}
    create(client, model="cold-text", instructions=INSTRUCTIONS, input=[{"role": "user", "content": text}])
    assert marks(fake_anthropic.last()) == []  # caching off: none, the client's included
    with pytest.raises(Exception) as refused:
        client.responses.create(model="claude-text", input="Hi", extra_body={"prompt_cache_options": {"ttl": "5h"}})
    assert refused.value.status_code == 400 and refused.value.body["param"] == "prompt_cache_options.ttl"


def test_a_gemini_prefix_is_held_in_an_explicit_context_cache(client, fake_gemini):
    def made() -> list[dict]:
        return [body for body, path in zip(fake_gemini.requests, fake_gemini.paths, strict=True) if path.startswith("/v1beta/cachedContents")]

    before = len(made())
    first = create(client, model="gemini-agent", instructions=INSTRUCTIONS, input="Fix the tests.", tools=[SHELL], prompt_cache_key="session-1")
    (cache,) = made()[before:]
    assert cache["model"] == "models/gemini-agent" and cache["ttl"] == "300s" and cache["systemInstruction"]["parts"][0]["text"] == INSTRUCTIONS
    sent = fake_gemini.last()
    assert sent["cachedContent"].startswith("cachedContents/") and not {"systemInstruction", "tools", "toolConfig"} & set(sent)
    assert first["usage"]["input_tokens_details"]["cached_tokens"] > 1000  # billed at the cached rate from the first turn
    again = create(client, model="gemini-agent", instructions=INSTRUCTIONS, input="And the docs.", tools=[SHELL], prompt_cache_key="session-1")
    assert len(made()) == before + 1 and fake_gemini.last()["cachedContent"] == sent["cachedContent"]  # made once
    assert again["usage"]["input_tokens_details"]["cached_tokens"] > 1000
    create(client, model="gemini-agent", instructions=INSTRUCTIONS, input="Hi.", tools=[SHELL], prompt_cache_key="session-2", prompt_cache_retention="24h")
    assert len(made()) == before + 2 and made()[-1]["ttl"] == "3600s"  # another key, its own cache, kept an hour
    create(client, model="gemini-agent", instructions="Be brief.", input="Hi.")
    assert len(made()) == before + 2 and "systemInstruction" in fake_gemini.last()  # too short to cache: sent whole


def test_usage_counts_every_upstream_call(cached, client, fake_chat):
    fake_chat.flaky = 0
    retried = create(
        client,
        model="mock-json-flaky",
        input="Paris?",
        extra_body={"retries": 2},
        text={
            "format": {"type": "json_schema", "name": "city", "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
        },
    )
    single = create(client, model="mock-text", input="Paris?")
    assert retried["usage"]["input_tokens"] == 2 * single["usage"]["input_tokens"]  # the attempt that missed its schema counts
    previous = None
    for turn in range(3):
        previous = create(client, model="mock-text", input=f"Turn {turn}: " + "lorem ipsum " * 250, previous_response_id=previous)["id"]
    compacted = create(
        client, model="mock-text", input="Where were we?", previous_response_id=previous, context_management=[{"type": "compaction", "compact_threshold": 1000}]
    )
    assert compacted["output"][0]["type"] == "compaction" and compacted["usage"]["input_tokens"] == 2 * single["usage"]["input_tokens"]

    def calls() -> int:
        report = httpx.get(cached.url + "/v1/organization/usage?group_by=model", headers={"Authorization": f"Bearer {MASTER}"}).json()
        return sum(row["upstream_calls"] for row in report["data"] if row["model"] == "mock-*")

    assert wait_until(lambda: calls() >= 2 + 1 + 3 + 2, 10)
    before = calls()
    client.responses.compact(model="mock-text", input=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    assert wait_until(lambda: calls() == before + 1, 10)  # the compact endpoint's summary call, counted too


def test_budgets_and_usage_records_spend_the_cached_price(cached, client):
    admin = Admin(cached)
    project = admin.project("Cached agents")
    key = admin.key(project)
    agent = sdk(cached, key["value"])
    bodies = [create(agent, model="claude-text", instructions=INSTRUCTIONS, input="Same question.") for _ in range(3)]
    expected = 0.0
    for body in bodies:
        usage = body["usage"]
        details = usage["input_tokens_details"]
        plain = usage["input_tokens"] - details["cached_tokens"] - details["cache_write_tokens"]
        expected += (plain * 3.0 + details["cached_tokens"] * 0.3 + details["cache_write_tokens"] * 3.75 + usage["output_tokens"] * 15.0) / 1e6
    full = sum(body["usage"]["input_tokens"] * 3.0 + body["usage"]["output_tokens"] * 15.0 for body in bodies) / 1e6
    assert expected < full / 2

    assert wait_until(lambda: recorded(cached, key["id"]).get("requests") == 3, 10)
    row = recorded(cached, key["id"])
    assert row["cost"] == pytest.approx(expected, abs=3e-6) and row["cached_tokens"] == sum(b["usage"]["input_tokens_details"]["cached_tokens"] for b in bodies)
    # a budget between the cached cost and the full price: spent at the cached price, it lasts
    budgeted = sdk(cached, admin.key(admin.project("Thrifty agents", budget=round((expected + full) / 2, 6)))["value"])
    for _ in range(3):
        create(budgeted, model="claude-text", instructions=INSTRUCTIONS, input="Same question.")


def test_a_search_the_upstream_bills_is_counted_and_priced(cached):
    admin = Admin(cached)
    key = admin.key(admin.project("Searchers"))
    body = create(sdk(cached, key["value"]), model="claude-search", input="Weather in Paris?", tools=[{"type": "web_search"}])
    assert [item["type"] for item in body["output"]].count("web_search_call") == 1
    assert wait_until(lambda: recorded(cached, key["id"]).get("requests") == 1, 10)
    row = recorded(cached, key["id"])
    tokens = (body["usage"]["input_tokens"] * 3.0 + body["usage"]["output_tokens"] * 15.0) / 1e6
    assert row["web_searches"] == 1 and row["cost"] == pytest.approx(tokens + 10.0 / 1000, abs=2e-6)  # $10 per 1,000 searches


def test_a_response_that_fails_after_a_tool_round_still_counts_that_round(cached, mcp_server):  # noqa: F811
    admin = Admin(cached)
    key = admin.key(admin.project("Unlucky"))
    events = stream(sdk(cached, key["value"]), model="claude-mcp-broken", input="What is 2 + 3?", tools=[docs(mcp_server)])
    assert events[-1]["type"] == "response.failed"

    assert wait_until(lambda: recorded(cached, key["id"]).get("requests") == 1, 10)
    row = recorded(cached, key["id"])
    assert row["errors"] == 1 and row["upstream_calls"] == 1 and row["input_tokens"] == 25 and row["cost"] > 0  # the first call, billed
