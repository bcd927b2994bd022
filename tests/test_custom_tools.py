"""Custom (freeform) tools, as Codex's `apply_patch`: offered upstream as a function with one
string argument, returned to the client as `custom_tool_call` items with their own events."""

from __future__ import annotations

import json

from helpers import create, stream, types

APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to files", "format": {"type": "text"}}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch"


def test_custom_tool_call_round_trip(multi, fake_chat):
    events = stream(multi, model="mock-custom-call", input="Add a.txt", tools=[APPLY_PATCH], tool_choice={"type": "custom", "name": "apply_patch"})
    assert "response.custom_tool_call_input.delta" in types(events) and "response.function_call_arguments.delta" not in types(events)
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == PATCH
    final = events[-1]["response"]
    [call] = final["output"]
    assert (call["type"], call["call_id"], call["name"], call["input"]) == ("custom_tool_call", "call_c1", "apply_patch", PATCH)
    assert final["tools"] == [APPLY_PATCH] and final["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    sent = fake_chat.last()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "apply_patch",
                "description": "Apply a patch to files",
                "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"], "additionalProperties": False},
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}

    second = create(
        multi,
        model="chat",
        previous_response_id=final["id"],
        input=[{"type": "custom_tool_call_output", "call_id": "call_c1", "output": "Done!"}],
        tools=[APPLY_PATCH],
    )
    assert fake_chat.last()["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_c1", "type": "function", "function": {"name": "apply_patch", "arguments": json.dumps({"input": PATCH}, separators=(",", ":"))}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_c1", "content": "Done!"},
    ]
    [listed] = multi.responses.input_items.list(second["id"]).data
    assert listed.type == "custom_tool_call_output" and listed.output == "Done!"


def test_custom_tools_reach_every_provider_as_functions(multi, fake_anthropic, fake_gemini, fake_responses):
    create(multi, model="claude-text", input="x", tools=[APPLY_PATCH])
    assert fake_anthropic.last()["tools"][0]["name"] == "apply_patch"
    create(multi, model="gemini-text", input="x", tools=[APPLY_PATCH])
    assert fake_gemini.last()["tools"][0]["functionDeclarations"][0]["name"] == "apply_patch"
    create(multi, model="oai-text", input="x", tools=[APPLY_PATCH], tool_choice={"type": "custom", "name": "apply_patch"})
    sent = fake_responses.last()
    assert sent["tools"][0]["type"] == "function" and sent["tool_choice"] == {"type": "function", "name": "apply_patch"}
