"""What an agent session costs, prompt caching off and on: a Codex-like session of 10 turns
through the gateway, with a stable prefix of about 6,000 tokens (instructions and tools) and a
history that grows by a tool call and its output each turn, all on 127.0.0.1.

On the fake Anthropic upstream (which caches by Anthropic's rules, `tests/fake_anthropic.py`)
the session runs twice: on a model with `prompt_caching: off` and on one with the default
`auto`. For each turn it prints the input tokens billed at each rate (plain, cache read, cache
write) and the turn's dollars at Anthropic's list prices for Claude Sonnet 4.5; then the
session's totals, the share of input read from the cache from turn 2 on (target: at least
80 %) and the cached session's cost against the uncached one's (target: at most 35 %). The same
session on the Gemini, Chat Completions and Responses fakes (which cache by themselves, as their
providers do), and on Gemini with an explicit context cache (`prompt_caching: cached_contents`),
shows the cached tokens each reports.

    .venv/bin/python bench/agent_cost.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import TESTS  # bench/ is on the path: this script's folder

sys.path.insert(0, str(TESTS))

from conftest import provider_models  # noqa: E402
from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_chat import FakeChat  # noqa: E402
from fake_gemini import FakeGemini  # noqa: E402
from fake_responses import FakeResponses  # noqa: E402
from gateway import Gateway  # noqa: E402
from openai import OpenAI  # noqa: E402

TURNS = 10
# Anthropic's list prices for Claude Sonnet 4.5, dollars per million tokens
PRICE = {"input": 3.0, "output": 15.0, "cached_input": 0.30, "cache_write": 3.75}
INSTRUCTIONS = "\n".join(
    f"Rule {n}: keep changes small, run the tests after each edit, explain what you changed and why, and never touch generated files." for n in range(170)
)  # about 22,000 characters: with the tools, some 6,000 tokens by the fakes' count
TOOLS = [
    {
        "type": "function",
        "name": name,
        "description": f"{name.replace('_', ' ').capitalize()} in the workspace. " * 6,
        "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}, "workdir": {"type": "string"}}},
    }
    for name in ("exec_command", "apply_patch", "read_file", "list_dir", "search_code", "run_tests")
]


def session(client: OpenAI, model: str) -> list[dict]:
    """Ten turns; each answers the model's tool calls, or (on a fake that only talks) adds the
    agent's call and its output itself. The usage of each turn."""
    usages = []
    previous = None
    turn_input: list | str = "Fix the failing tests in this repository."
    for turn in range(TURNS):
        response = client.responses.create(model=model, instructions=INSTRUCTIONS, tools=TOOLS, input=turn_input, previous_response_id=previous)
        usages.append(response.usage.model_dump())
        previous = response.id
        output = f"$ pytest -q tests/test_step_{turn}.py\n" + "".join(f"tests/test_step_{turn}.py::test_case_{i} PASSED\n" for i in range(25))
        calls = [item for item in response.output if item.type == "function_call"]
        if calls:
            turn_input = [{"type": "function_call_output", "call_id": call.call_id, "output": output} for call in calls]
        else:
            call_id = f"call_turn{turn}"
            turn_input = [
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": "exec_command",
                    "arguments": f'{{"command": ["pytest", "-q", "tests/test_step_{turn}.py"]}}',
                },
                {"type": "function_call_output", "call_id": call_id, "output": output},
            ]
    return usages


def rates(usage: dict) -> tuple[int, int, int, int]:
    """Input tokens at the plain, cache-read and cache-write rates, and output tokens."""
    details = usage["input_tokens_details"]
    cached, written = details["cached_tokens"], details.get("cache_write_tokens") or 0
    return usage["input_tokens"] - cached - written, cached, written, usage["output_tokens"]


def dollars(usage: dict) -> float:
    plain, cached, written, output = rates(usage)
    return (plain * PRICE["input"] + cached * PRICE["cached_input"] + written * PRICE["cache_write"] + output * PRICE["output"]) / 1e6


def report(title: str, usages: list[dict]) -> float:
    print(f"\n{title}")
    print(f"{'turn':>4} {'input':>7} {'plain':>7} {'read':>7} {'write':>7} {'output':>6} {'dollars':>9}")
    for turn, usage in enumerate(usages, 1):
        plain, cached, written, output = rates(usage)
        print(f"{turn:>4} {usage['input_tokens']:>7} {plain:>7} {cached:>7} {written:>7} {output:>6} {dollars(usage):>9.5f}")
    total = sum(map(dollars, usages))
    later = usages[1:]
    share = sum(rates(u)[1] for u in later) / sum(u["input_tokens"] for u in later)
    print(f"session: ${total:.4f}; turns 2-{TURNS}: {share:.1%} of input tokens read from the cache")
    return total


def main() -> None:
    fakes = FakeChat(), FakeAnthropic(), FakeGemini(), FakeResponses()
    for fake in fakes:
        fake.start()
    chat, anthropic, gemini, responses = fakes
    try:
        with tempfile.TemporaryDirectory(prefix="rejoinder-bench-") as workdir:
            models = provider_models(chat, anthropic, gemini, responses)
            cold = {"name": "cold-*", "provider": "anthropic", "base_url": anthropic.url + "/v1", "api_key": "sk-ant-bench", "prompt_caching": "off"}
            held = {"name": "held-*", "provider": "gemini", "base_url": gemini.url + "/v1beta", "api_key": "bench", "prompt_caching": "cached_contents"}
            gw = Gateway({"models": [cold, held, *models], "database_url": f"sqlite:///{workdir}/r.db"}, Path(workdir)).start()
            try:
                client = OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=60)
                uncached = report("Anthropic, prompt_caching: off", session(client, "cold-agent"))
                cached = report("Anthropic, prompt_caching: auto", session(client, "claude-agent"))
                print(f"\nthe cached session costs {cached / uncached:.1%} of the uncached one (target: at most 35 %)")
                for title, model in (
                    ("Gemini (implicit caching)", "gemini-agent"),
                    ("Gemini (an explicit context cache)", "held-agent"),
                    ("Chat Completions (OpenAI's caching)", "mock-agent"),
                    ("Responses (OpenAI's caching)", "oai-agent"),
                ):
                    usages = session(client, model)
                    print(f"\n{title}: cached tokens per turn: {[u['input_tokens_details']['cached_tokens'] for u in usages]}")
                    print(f"  input tokens per turn: {[u['input_tokens'] for u in usages]}")
            finally:
                gw.stop()
    finally:
        for fake in fakes:
            fake.stop()


if __name__ == "__main__":
    main()
