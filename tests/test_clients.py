"""More clients as their users write them, over real HTTP against the gateway and the fake Chat
Completions upstream: LangChain's `ChatOpenAI` with `use_responses_api=True`, pydantic-ai's
`OpenAIResponsesModel` and the Vercel AI SDK's `openai.responses(…)` (Node, from npm into
`.tools`, as `make test` installs it). Each asks for text, a tool call and structured output;
every body the Python clients receive is validated against the spec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider
from spec import validating_async_client, validating_client


class Weather(BaseModel):
    city: str
    temperature_c: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return json.dumps({"city": city, "sky": "sunny"})


def _langchain(gateway, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=gateway.url + "/v1", api_key="unused", use_responses_api=True, max_retries=0, http_client=validating_client())


def test_langchain_text_tools_and_structured_output(gateway, fake_chat):
    assert _langchain(gateway, "chat").invoke("Say hello").text == "Hello, world!"

    called = _langchain(gateway, "mock-call-weather").bind_tools([get_weather]).invoke("Weather in Paris?")
    (call,) = called.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}

    structured = _langchain(gateway, "mock-json").with_structured_output(Weather, method="json_schema").invoke("Weather in Paris as JSON")
    assert structured == Weather(city="Paris", temperature_c=21)
    sent = fake_chat.requests[-1]
    assert sent["response_format"]["type"] == "json_schema" and sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "temperature_c"]


def _pydantic_ai(gateway, model: str) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model, provider=OpenAIProvider(base_url=gateway.url + "/v1", api_key="unused", http_client=validating_async_client()))


def test_pydantic_ai_text_tools_and_structured_output(gateway, fake_chat):
    assert Agent(_pydantic_ai(gateway, "chat")).run_sync("Say hello").output == "Hello, world!"

    agent = Agent(_pydantic_ai(gateway, "mock-call-weather"), tools=[get_weather])
    before = len(fake_chat.requests)
    answered = agent.run_sync("Weather in Paris?")
    assert answered.output.startswith("The tool said:") and "sunny" in answered.output  # the agent ran the tool and sent its output back
    assert len(fake_chat.requests) - before == 2

    typed = Agent(_pydantic_ai(gateway, "mock-json"), output_type=Weather).run_sync("Weather in Paris as JSON")
    assert typed.output == Weather(city="Paris", temperature_c=21)


AI_SDK = Path(__file__).resolve().parents[1] / ".tools" / "node_modules" / "@ai-sdk" / "openai"


def test_the_vercel_ai_sdk_text_stream_tools_and_structured_output(gateway, fake_chat, tmp_path):
    if not AI_SDK.exists() or shutil.which("node") is None:
        message = f"the Vercel AI SDK is not installed at {AI_SDK.parent.parent} (make test installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    # Node resolves an ES module's imports from where the module is: beside the packages
    script = shutil.copy(Path(__file__).parent / "clients" / "vercel_ai.mjs", tmp_path)
    (tmp_path / "node_modules").symlink_to(AI_SDK.parents[1])
    done = subprocess.run(["node", script, gateway.url + "/v1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["text"] == got["streamed"] == "Hello, world!"
    assert got["toolCalls"] == [["get_weather", {"city": "Paris"}]]
    assert got["steps"] == 2 and got["answer"].startswith("The tool said:") and "sunny" in got["answer"]  # the SDK ran the tool and went on
    assert got["object"] == {"city": "Paris", "temperature_c": 21}
