"""The OpenAI Agents SDK (`openai-agents`) runs its agents on the gateway, its client validating
every body against the spec: a function tool the agent runs itself, a hosted MCP tool the
gateway runs (approved by the agent's callback), its web search tool searched by the gateway,
structured output, a streamed run, turns carried by `previous_response_id`, by a gateway
conversation and by its conversations and compaction sessions, and the SDK's WebSocket model.
Tracing is off: it would export to OpenAI's host."""

from __future__ import annotations

import asyncio
import json

import agents
import pytest
from conftest import provider_models
from gateway import Gateway
from openai import AsyncOpenAI
from providers import models
from pydantic import BaseModel
from spec import validating_async_client
from test_gateway_search import searxng  # noqa: F401  (a fixture)
from test_mcp import docs, mcp_server  # noqa: F401  (a fixture)

agents.set_tracing_disabled(True)


@pytest.fixture(scope="module")
def gateway(fake_chat, fake_anthropic, fake_gemini, fake_responses, mcp_server, searxng, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("agents")
    compactor = {"name": "gpt-4.1", "provider": "openai-chat", "base_url": f"http://127.0.0.1:{fake_chat.port}/v1", "upstream_model": "text"}
    models = [
        *provider_models(fake_chat, fake_anthropic, fake_gemini, fake_responses),
        compactor,
    ]  # the SDK's compaction session takes only OpenAI's model names
    config = {"models": models, "database_url": f"sqlite:///{workdir}/r.db", "mcp_allow_hosts": [mcp_server.removeprefix("http://")]}
    config["web_search"] = {"backend": "searxng", "url": searxng.url}
    gw = Gateway(config, workdir).start()
    yield gw
    gw.stop()


asked: list[str] = []


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    asked.append(city)
    return f"Sunny in {city}"


def _client(gw: Gateway) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, http_client=validating_async_client())


def _agent(gw: Gateway, model: str, tools: list, websocket: bool = False, client: AsyncOpenAI | None = None) -> agents.Agent:
    client = client or _client(gw)
    kind = agents.OpenAIResponsesWSModel if websocket else agents.OpenAIResponsesModel
    return agents.Agent(name="helper", instructions="Be brief.", model=kind(model, client), tools=tools)


def test_an_agent_runs_its_function_tool_and_answers(gateway, fake_chat):
    before = len(fake_chat.requests)
    result = asyncio.run(agents.Runner.run(_agent(gateway, "mock-call-weather", [get_weather]), "Weather in Paris?"))
    assert result.final_output == "The tool said: Sunny in Paris" and asked[-1] == "Paris"
    first, second = fake_chat.requests[before:]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."} and first["tools"][0]["function"]["name"] == "get_weather"
    assert [m["content"] for m in second["messages"] if m["role"] == "tool"] == ["Sunny in Paris"]


def test_turns_carried_by_previous_response_id(gateway, fake_chat):
    """With `auto_previous_response_id` the SDK sends only each turn's new items; the gateway's
    stored response holds the rest."""
    result = asyncio.run(agents.Runner.run(_agent(gateway, "mock-call-weather", [get_weather]), "Weather in Paris?", auto_previous_response_id=True))
    assert result.final_output == "The tool said: Sunny in Paris" and result.last_response_id.startswith("resp_")
    history = fake_chat.last()["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool"] and history[1]["content"] == "Weather in Paris?"


@pytest.mark.parametrize("model", models("mcp"))
def test_a_hosted_mcp_tool_runs_in_the_gateway_after_the_agent_approves(gateway, mcp_server, model):  # noqa: F811
    """On every provider: the SDK sends its whole history back each turn (listing, approval
    request and response), in each provider's translation."""
    approvals: list[str] = []

    def approve(request: agents.MCPToolApprovalRequest) -> agents.MCPToolApprovalFunctionResult:
        approvals.append(request.data.name)
        return {"approve": True}

    tool = {k: v for k, v in docs(mcp_server).items() if k != "require_approval"}  # approval: always
    result = asyncio.run(agents.Runner.run(_agent(gateway, model, [agents.HostedMCPTool(tool_config=tool, on_approval_request=approve)]), "2 + 3?"))
    assert result.final_output == "The tool said: 5" and approvals == ["add"]
    calls = [item.raw_item for item in result.new_items if getattr(item.raw_item, "type", None) == "mcp_call"]
    assert len(calls) == 1 and calls[0].output == "5" and json.loads(calls[0].arguments) == {"a": 2, "b": 3}


def test_a_streamed_run_with_an_mcp_tool(gateway, mcp_server):  # noqa: F811
    async def run() -> tuple[list[str], str]:
        streamed = agents.Runner.run_streamed(_agent(gateway, "mock-mcp-add", [agents.HostedMCPTool(tool_config=docs(mcp_server))]), "2 + 3?")
        kinds = [event.data.type async for event in streamed.stream_events() if event.type == "raw_response_event"]
        return kinds, streamed.final_output

    kinds, answer = asyncio.run(run())
    assert answer == "The tool said: 5" and "response.mcp_call.completed" in kinds and kinds[-1] == "response.completed"


def test_the_sdks_web_search_tool_searched_by_the_gateway(gateway, searxng):  # noqa: F811
    result = asyncio.run(agents.Runner.run(_agent(gateway, "mock-searcher", [agents.WebSearchTool()]), "Weather in Oslo?"))
    assert result.final_output == "Oslo: 18C, clear." and searxng.queries[-1] == "weather in Oslo"
    assert [getattr(item.raw_item, "type", None) for item in result.new_items][0] == "web_search_call"


@pytest.mark.parametrize("model", ["mock-file-search", "claude-file-search"])
def test_the_sdks_file_search_tool_searched_by_the_gateway(gateway, model):
    client = _client(gateway)

    async def run() -> agents.RunResult:
        store = await client.vector_stores.create(name="agents")
        added = await client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("launch.md", b"The launch code is PELICAN-42."))
        assert added.status == "completed"
        tool = agents.FileSearchTool(vector_store_ids=[store.id], max_num_results=3, include_search_results=True)
        return await agents.Runner.run(_agent(gateway, model, [tool], client=client), "What is the launch code?")

    result = asyncio.run(run())
    assert "PELICAN-42" in result.final_output
    call = next(item.raw_item for item in result.new_items if getattr(item.raw_item, "type", None) == "file_search_call")
    assert call.status == "completed" and "PELICAN-42" in call.results[0].text


def test_the_websocket_model(gateway):
    result = asyncio.run(agents.Runner.run(_agent(gateway, "mock-call-weather", [get_weather], websocket=True), "Weather in Paris?"))
    assert result.final_output == "The tool said: Sunny in Paris"


class Weather(BaseModel):
    city: str
    temperature_c: int


def test_structured_output_as_the_agents_output_type(gateway, fake_chat):
    agent = _agent(gateway, "mock-json", []).clone(output_type=Weather)
    result = asyncio.run(agents.Runner.run(agent, "Weather in Paris as JSON?"))
    assert result.final_output == Weather(city="Paris", temperature_c=21)
    assert fake_chat.last()["response_format"]["type"] == "json_schema"  # the SDK's strict schema, passed on


def test_a_conversations_session_keeps_the_history_on_the_gateway(gateway, fake_chat):
    """`OpenAIConversationsSession` stores each run's items in a gateway conversation, reads them
    back for the next run, pops the last and deletes the conversation."""

    async def runs() -> None:
        client = _client(gateway)
        session = agents.OpenAIConversationsSession(openai_client=client)
        first = await agents.Runner.run(_agent(gateway, "mock-call-weather", [get_weather], client=client), "Weather in Paris?", session=session)
        assert first.final_output == "The tool said: Sunny in Paris"
        second = await agents.Runner.run(_agent(gateway, "mock-text", [], client=client), "Thanks", session=session)
        assert second.final_output == "Hello, world!"
        history = fake_chat.last()["messages"]
        assert [m["content"] for m in history if m["role"] == "user"] == ["Weather in Paris?", "Thanks"]
        assert any(m["role"] == "tool" and m["content"] == "Sunny in Paris" for m in history)
        items = await session.get_items()
        assert [item["type"] for item in items] == ["message", "function_call", "function_call_output", "message", "message", "message"]
        assert items[0]["content"][0]["text"] == "Weather in Paris?" and items[-1]["content"][0]["text"] == "Hello, world!"
        popped = await session.pop_item()
        assert popped is not None and len(await session.get_items()) == len(items) - 1
        await session.clear_session()

    asyncio.run(runs())


def test_a_run_in_a_conversation_the_client_created(gateway, fake_chat):
    async def runs() -> list[dict]:
        client = _client(gateway)
        agent = _agent(gateway, "mock-text", [], client=client)
        conversation = await client.conversations.create()
        await agents.Runner.run(agent, "Hello there", conversation_id=conversation.id)
        await agents.Runner.run(agent, "And again", conversation_id=conversation.id)
        return fake_chat.last()["messages"]

    history = asyncio.run(runs())
    assert [m["content"] for m in history if m["role"] == "user"] == ["Hello there", "And again"]


def test_a_compaction_session_compacts_on_the_gateway_and_goes_on(gateway, fake_chat):
    """`OpenAIResponsesCompactionSession` calls `responses.compact` after each run and keeps what
    it answers (the user's messages and a sealed `compaction` item); the next run sends that back,
    and the upstream sees the summary in place of the rest."""

    async def runs() -> list[dict]:
        client = _client(gateway)
        session = agents.OpenAIResponsesCompactionSession(
            "s1", agents.SQLiteSession("s1"), client=client, model="gpt-4.1", should_trigger_compaction=lambda _: True
        )
        first = await agents.Runner.run(_agent(gateway, "mock-call-weather", [get_weather], client=client), "Weather in Paris?", session=session)
        assert first.final_output == "The tool said: Sunny in Paris"
        items = await session.get_items()
        assert [item["type"] if "type" in item else "message" for item in items] == ["message", "compaction"]
        before = len(fake_chat.requests)
        await agents.Runner.run(_agent(gateway, "mock-text", [], client=client), "Thanks", session=session)
        return fake_chat.requests[before]["messages"]  # the run's own turn (its compaction follows)

    history = asyncio.run(runs())
    assert [m["content"] for m in history] == [
        "Be brief.",
        "Weather in Paris?",
        "Summary of the conversation so far (a context checkpoint):\nHello, world!",  # the fake upstream's summary
        "Thanks",
    ]
