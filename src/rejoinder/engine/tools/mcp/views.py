"""MCP items as the gateway shows them: the deltas that stream an `mcp_list_tools` item or an
approved call, and what a model whose MCP tools the gateway runs is told of its calls and
asked to choose (`as_choice`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.items import FunctionCall, FunctionCallOutput, HostedItem, Item
from rejoinder.protocol.tools import AllowedTool, AllowedTools, NamedFunction, NamedMcp
from rejoinder.providers.base import Delta, HostedEvent, HostedOutput, HostedStart

SEPARATOR = "__"
MAX_NAME = 64  # what OpenAI, Anthropic and Gemini accept of a function's name, in [A-Za-z0-9_-]
_UNFIT = re.compile(r"[^A-Za-z0-9_-]")


def function_name(label: Any, tool: Any) -> str:
    """The name an MCP tool is offered to the model by: `mcp__<label>__<tool>`, made fit for
    every upstream (other characters become `_`; a longer name keeps its start and a hash of the
    whole), the same every time, so that later turns name earlier calls alike."""
    name = f"mcp{SEPARATOR}{label}{SEPARATOR}{tool}"
    fit = _UNFIT.sub("_", name)
    if fit == name and len(name) <= MAX_NAME:
        return name
    return f"{fit[: MAX_NAME - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def hosted(items: Iterable[Item], kind: str) -> list[dict[str, Any]]:
    """The hosted items of one type (`mcp_call` …) among `items`, as the JSON objects they are."""
    return [item.raw for item in items if isinstance(item, HostedItem) and item.raw.get("type") == kind]


def as_functions(items: list[Item]) -> list[Item]:
    """What a model whose MCP tools the gateway runs sees of the MCP items in its context: each
    call as the function call and output it was (under the name it was offered by), a refused
    approval as a call the user did not approve; listings and approval requests are the
    gateway's own business, shown to no model."""
    if not any(isinstance(item, HostedItem) and str(item.raw.get("type")).startswith("mcp_") for item in items):
        return items
    asked = {raw.get("id"): raw for raw in hosted(items, "mcp_approval_request")}
    seen: list[Item] = []
    for item in items:
        kind = item.raw.get("type") if isinstance(item, HostedItem) else None
        if not str(kind).startswith("mcp_"):
            seen.append(item)
        elif kind == "mcp_call":
            call_id, name = str(item.raw.get("id")), function_name(item.raw.get("server_label"), item.raw.get("name"))
            said = told(item.raw.get("output"), item.raw.get("error"))
            seen += [FunctionCall(call_id, name, str(item.raw.get("arguments") or "{}")), FunctionCallOutput(call_id, said)]
        elif kind == "mcp_approval_response" and not item.raw.get("approve") and item.raw.get("approval_request_id") in asked:
            request = asked[item.raw["approval_request_id"]]
            name = function_name(request.get("server_label"), request.get("name"))
            reason = f" Reason: {item.raw['reason']}" if isinstance(item.raw.get("reason"), str) else ""
            call = FunctionCall(str(request.get("id")), name, str(request.get("arguments") or "{}"))
            seen += [call, FunctionCallOutput(call.call_id, "The user did not approve this call." + reason)]
    return seen


def ran_deltas(item: dict[str, Any]) -> list[Delta]:
    """An approved call run before the model's turn, with its events."""
    return [HostedStart({**item, "status": "in_progress"}), HostedEvent(f"response.mcp_call.{item['status']}", item["id"], {}), HostedOutput(item)]


def listing(item: dict[str, Any]) -> list[Delta]:
    """An `mcp_list_tools` item made before the model's turn, with its events."""
    events = [HostedEvent(f"response.mcp_list_tools.{stage}", item["id"], {}) for stage in ("in_progress", "completed")]
    return [HostedStart(dict(item)), *events, HostedOutput(item)]


def as_choice(choice: Any, offered: Sequence[tuple[str, str, str]]) -> Any:
    """A `tool_choice` that names MCP tools, as the functions they are offered as (`offered`:
    function name, server label, tool): one tool is its function; a server, or an
    `allowed_tools` entry of one, stands for each of its tools the model is offered."""

    def functions(label: Any, tool: str | None) -> list[AllowedTool]:
        found = [AllowedTool("function", name) for name, server, its in offered if server == label and tool in (None, its)]
        if not found:
            raise invalid("tool_choice", f"Tool choice 'mcp': the server '{label}' offers no tool{f' {tool!r}' if tool else ''} to call.")
        return found

    if isinstance(choice, NamedMcp):
        found = functions(choice.server_label, choice.name)
        return NamedFunction(str(found[0].name)) if choice.name is not None else AllowedTools("required", found)
    if isinstance(choice, AllowedTools) and any(entry.type == "mcp" for entry in choice.tools):
        tools = [each for entry in choice.tools for each in (functions(entry.server_label, entry.name) if entry.type == "mcp" else [entry])]
        return AllowedTools(choice.mode, tools)
    return choice


def protocol_error(message: str) -> dict[str, Any]:
    return {"type": "mcp_protocol_error", "code": -32603, "message": message}


def told(output: Any, error: Any) -> str:
    """What the model is told of a call: its output, or its error."""
    return output if isinstance(output, str) else f"Error: {error_text(error)}"


def error_text(error: Any) -> str:
    """What the model is told of a failed call."""
    if not isinstance(error, dict):
        return str(error or "The tool failed.")
    if error.get("type") == "mcp_tool_execution_error":
        return " ".join(part.get("text", "") for part in error.get("content") or () if isinstance(part, dict)) or "The tool failed."
    return str(error.get("message") or "The tool failed.")
