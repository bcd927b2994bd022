"""MCP tools run by the gateway, on every provider that does not run them itself, with the
official `mcp` SDK as the client (streamable HTTP, or the older SSE transport for a server that
answers only that).

Before a turn: each `mcp` tool's server is checked (the SSRF guard below), its tools are listed
(an `mcp_list_tools` item), unless the context already holds a listing of that server, which is
reused, and offered to the model as functions named `mcp__<label>__<tool>`. The model's calls
become `mcp_call` items and run when its turn ends (see `engine.searching.Round`).

The guard: a server URL must be https, and every address its host resolves to must be public
(not loopback, private, link-local, reserved or multicast), unless its host (or host:port) is
in `mcp_allow_hosts`, which may also use plain http. Refused URLs are a 400 before anything
connects. Header values and `authorization` are never echoed, stored or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx2
import orjson
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import FunctionCall, FunctionCallOutput, HostedItem, Item
from rejoinder.protocol.tools import FunctionTool, Tools
from rejoinder.providers.base import Delta, HostedEvent, HostedOutput, HostedStart

log = logging.getLogger("rejoinder.mcp")

SEPARATOR = "__"
LIST_TIMEOUT = 10.0  # seconds to list a server's tools
CALL_TIMEOUT = 60.0  # seconds for one tool call
MAX_OUTPUT = 64 * 1024  # characters of a tool's output kept (and shown to the model)
REDACTED = "<redacted>"


class Server(NamedTuple):
    label: str
    url: str
    headers: dict[str, str]


class McpAccess(NamedTuple):
    """What the config says of MCP servers: hosts allowed past the guard, and named servers."""

    allowed_hosts: list[str]
    servers: list[Any]  # `config.McpServerConfig`


class Offered(NamedTuple):
    """A function the model is offered, and the MCP tool it calls."""

    server: Server
    tool: str
    approval: bool = True  # a call waits for the client's approval (`require_approval`)


class Prepared(NamedTuple):
    offered: dict[str, Offered]  # function name → the MCP tool it calls
    listed: list[dict[str, Any]]  # `mcp_list_tools` items listed anew
    ran: list[dict[str, Any]]  # `mcp_call` items of calls approved by this request, run before the model's turn
    answers: list[Item]  # what the model sees of the approved (and refused) calls: each call and its output


async def prepare(tools: Tools, earlier: list[Item], own_input: list[Item], access: McpAccess) -> Prepared:
    """Take the `mcp` tools out of `tools.hosted` and offer their servers' tools as functions;
    run the calls this request's `mcp_approval_response` items approve."""
    context = earlier + own_input
    offered: dict[str, Offered] = {}
    listed: list[dict[str, Any]] = []
    kept = []
    known = {
        item.raw["server_label"]: item.raw
        for item in context
        if isinstance(item, HostedItem) and item.raw.get("type") == "mcp_list_tools" and isinstance(item.raw.get("server_label"), str)
    }
    for index, tool in tools.hosted:
        if tool.get("type") != "mcp":
            kept.append((index, tool))
            continue
        named = next((entry for entry in access.servers if entry.label == tool.get("server_label")), None)
        server = _server(tool, index, named)
        approval = _approval(tool.get("require_approval", "always"), index)
        if named is None or tool.get("server_url") is not None:  # the config's own servers are the operator's choice
            await guard(server.url, access.allowed_hosts, f"tools[{index}].server_url")
        tools.echo[index] = _redacted(tool)
        listing_known = known.get(server.label)
        if listing_known is not None:
            found = [dict(entry) for entry in listing_known.get("tools") or () if isinstance(entry, dict) and isinstance(entry.get("name"), str)]
        else:
            found = await list_tools(server)
            listed.append({"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": server.label, "tools": found})
        allowed = _allowed(tool.get("allowed_tools"))
        for entry in found:
            if allowed is not None and entry["name"] not in allowed:
                continue
            name = f"mcp{SEPARATOR}{server.label}{SEPARATOR}{entry['name']}"
            if any(function.name == name for function in tools.functions):
                raise invalid(f"tools[{index}].server_label", f"The MCP tool '{entry['name']}' of '{server.label}' clashes with another tool's name.")
            offered[name] = Offered(server, entry["name"], approval(entry["name"]))
            tools.functions = [*tools.functions, FunctionTool(name, entry.get("description"), entry.get("input_schema") or {"type": "object"})]
    tools.hosted = kept
    ran, answers = await _approved(offered, earlier, own_input)
    return Prepared(offered, listed, ran, answers)


async def _approved(offered: dict[str, Offered], earlier: list[Item], own_input: list[Item]) -> tuple[list[dict[str, Any]], list[Item]]:
    """The calls this request's approval responses answer: approved ones run now; the model is
    told of each (refused ones too)."""
    asked = {item.raw["id"]: item.raw for item in earlier if isinstance(item, HostedItem) and item.raw.get("type") == "mcp_approval_request"}
    ran: list[dict[str, Any]] = []
    answers: list[Item] = []
    for item in own_input:
        if not (isinstance(item, HostedItem) and item.raw.get("type") == "mcp_approval_response"):
            continue
        request = asked.get(item.raw.get("approval_request_id"))
        if request is None:
            raise invalid("input", f"No MCP approval request '{str(item.raw.get('approval_request_id'))[:64]}' in this response's context.")
        name = f"mcp{SEPARATOR}{request.get('server_label')}{SEPARATOR}{request.get('name')}"
        if name not in offered:
            raise invalid("tools", f"The MCP tool '{request.get('name')}' of '{request.get('server_label')}' must be in 'tools' to run the approved call.")
        arguments = request.get("arguments") or "{}"
        if item.raw.get("approve"):
            output, error = await call(offered[name], arguments)
            ran.append({
                "id": new_id("mcp"), "type": "mcp_call", "server_label": request["server_label"], "name": request["name"], "arguments": arguments,
                "output": output, "error": error, "status": "completed" if output is not None else "failed", "approval_request_id": request["id"],
            })  # fmt: skip
            told = output if output is not None else f"Error: {error_text(error)}"
        else:
            told = "The user did not approve this call." + (f" Reason: {item.raw['reason']}" if isinstance(item.raw.get("reason"), str) else "")
        answers += [FunctionCall(request["id"], name, arguments), FunctionCallOutput(request["id"], told)]
    return ran, answers


def ran_deltas(item: dict[str, Any]) -> list[Delta]:
    """An approved call run before the model's turn, with its events."""
    return [HostedStart({**item, "status": "in_progress"}), HostedEvent(f"response.mcp_call.{item['status']}", item["id"], {}), HostedOutput(item)]


def listing(item: dict[str, Any]) -> list[Delta]:
    """An `mcp_list_tools` item made before the model's turn, with its events."""
    events = [HostedEvent(f"response.mcp_list_tools.{stage}", item["id"], {}) for stage in ("in_progress", "completed")]
    return [HostedStart(dict(item)), *events, HostedOutput(item)]


def _server(tool: dict[str, Any], index: int, named: Any) -> Server:
    """The server a tool names: its own `server_url`, else the config's server of that label."""
    label, url = tool.get("server_label"), tool.get("server_url") or (named.url if named is not None else None)
    if not isinstance(label, str) or not label or not label.replace("_", "").replace("-", "").isalnum():
        raise invalid(f"tools[{index}].server_label", "Invalid 'server_label': letters, digits, '_' and '-' only.")
    if not isinstance(url, str):
        raise invalid(f"tools[{index}].server_url", "An MCP tool needs its 'server_url' (or a 'server_label' the config names).", "missing_required_parameter")
    headers = {**(named.headers if named is not None else {}), **{str(k): str(v) for k, v in (tool.get("headers") or {}).items()}}
    if isinstance(tool.get("authorization"), str):
        headers["Authorization"] = f"Bearer {tool['authorization']}"
    return Server(label, url, headers)


def _approval(policy: Any, index: int) -> Any:
    """Whether a tool's calls wait for approval, by `require_approval`: `always` (the default),
    `never`, or `{always: {tool_names}, never: {tool_names}}` (a tool in neither: always)."""
    if policy in ("always", "never"):
        return lambda _: policy == "always"
    if isinstance(policy, dict) and set(policy) <= {"always", "never"}:
        never = set((policy.get("never") or {}).get("tool_names") or ())
        return lambda name: name not in never
    raise invalid(f"tools[{index}].require_approval", "Invalid 'require_approval': expected 'always', 'never' or {always, never}.")


def _allowed(allowed: Any) -> set[str] | None:
    if isinstance(allowed, list):
        return {name for name in allowed if isinstance(name, str)}
    if isinstance(allowed, dict) and isinstance(allowed.get("tool_names"), list):
        return set(allowed["tool_names"])
    return None


def _redacted(tool: dict[str, Any]) -> dict[str, Any]:
    shown = {key: value for key, value in tool.items() if key != "authorization"}
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {key: REDACTED for key in shown["headers"]}
    return shown


async def guard(url: str, allowed_hosts: list[str], param: str) -> None:
    """Refuse a server URL that could reach this machine or its network (see the module's doc)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise invalid(param, f"Invalid '{param}': not a URL.") from None
    listed = host in allowed_hosts or f"{host}:{port}" in allowed_hosts
    if parts.scheme not in ("http", "https") or not host or (parts.scheme == "http" and not listed):
        raise invalid(param, f"Invalid '{param}': an MCP server must be reached over https.")
    if listed:
        return
    try:
        addresses = {info[4][0] for info in await asyncio.get_running_loop().getaddrinfo(host, port)}
    except OSError:
        raise invalid(param, f"Invalid '{param}': the host '{host}' does not resolve.") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise invalid(param, f"Invalid '{param}': '{host}' is not a public address (list it in mcp_allow_hosts to allow it).")


_SSE: dict[str, bool] = {}  # server URL → it answered only the older SSE transport (learnt when listing)


def _client(server: Server, sse: bool | None = None) -> Client:
    if sse if sse is not None else _SSE.get(server.url, False):
        return Client(sse_client(server.url, headers=server.headers, sse_read_timeout=CALL_TIMEOUT), read_timeout_seconds=CALL_TIMEOUT)
    http = httpx2.AsyncClient(headers=server.headers, timeout=httpx2.Timeout(CALL_TIMEOUT))
    return Client(streamable_http_client(server.url, http_client=http), read_timeout_seconds=CALL_TIMEOUT)


async def list_tools(server: Server) -> list[dict[str, Any]]:
    """A server's tools as `mcp_list_tools` lists them, over streamable HTTP, else over the older
    SSE transport (which the server's calls then use too); a 424 when neither answers."""
    found = None
    for sse in (False, True):
        try:
            async with asyncio.timeout(LIST_TIMEOUT), _client(server, sse) as client:
                found = await client.list_tools()
            break
        except Exception as exc:
            log.info("MCP server %s not listed over %s: %s", server.label, "SSE" if sse else "streamable HTTP", type(exc).__name__)
    if found is None:
        log.warning("MCP server %s could not be listed", server.label)
        raise ApiError(424, f"Error retrieving tool list from MCP server: '{server.label}'.", param="tools", code="mcp_list_tools_failed")
    if len(_SSE) > 10_000:
        _SSE.clear()
    _SSE[server.url] = sse
    return [{"name": tool.name, "description": tool.description, "input_schema": dict(tool.input_schema or {"type": "object"})} for tool in found.tools]


class Sessions:
    """The MCP sessions of one response: one per server, opened at its first call and kept for
    the next ones, closed with the response. anyio wants a session closed by the task that opened
    it: `open` runs in the response's own task, never in the calls' gathered ones."""

    def __init__(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        self.clients: dict[str, Client | None] = {}  # server URL → its session (None: it could not be opened)

    async def open(self, server: Server) -> None:
        if server.url in self.clients:
            return
        try:
            async with asyncio.timeout(LIST_TIMEOUT):
                self.clients[server.url] = await self.stack.enter_async_context(_client(server))
        except Exception as exc:
            log.warning("MCP server %s: no session (%s)", server.label, type(exc).__name__)
            self.clients[server.url] = None

    async def close(self) -> None:
        try:
            await self.stack.aclose()
        except Exception as exc:  # a session that broke: nothing more to release
            log.info("MCP sessions closed with %s", type(exc).__name__)
        self.clients = {}


async def call(offered: Offered, arguments: str, sessions: Sessions | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """Run one tool with the model's JSON `arguments` (on the response's session with its
    server, when there is one, else on a session of its own): its output, or its error as an
    `mcp_call` item holds it (the tool's own error content, or a protocol error for arguments
    that are not an object, or a server that failed or did not answer in time)."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return None, protocol_error("The arguments are not a JSON object.")
    try:
        async with asyncio.timeout(CALL_TIMEOUT), contextlib.AsyncExitStack() as stack:
            client = sessions.clients.get(offered.server.url) if sessions is not None else None
            if client is None:
                client = await stack.enter_async_context(_client(offered.server))
            result = await client.call_tool(offered.tool, parsed)
    except TimeoutError:
        return None, protocol_error(f"The MCP tool '{offered.tool}' did not answer within {CALL_TIMEOUT:g} s.")
    except Exception as exc:
        log.warning("MCP call %s.%s failed: %s", offered.server.label, offered.tool, type(exc).__name__)
        return None, protocol_error(f"The MCP server '{offered.server.label}' could not run '{offered.tool}' ({type(exc).__name__}).")
    text = "\n".join(part.text for part in result.content if getattr(part, "type", None) == "text")[:MAX_OUTPUT]
    if result.is_error:
        return None, {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text or "The tool failed."}]}
    return text, None


def protocol_error(message: str) -> dict[str, Any]:
    return {"type": "mcp_protocol_error", "code": -32603, "message": message}


def error_text(error: dict[str, Any]) -> str:
    """What the model is told of a failed call."""
    if error.get("type") == "mcp_tool_execution_error":
        return " ".join(part.get("text", "") for part in error.get("content") or () if isinstance(part, dict)) or "The tool failed."
    return str(error.get("message") or "The tool failed.")
