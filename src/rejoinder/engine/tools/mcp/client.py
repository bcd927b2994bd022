"""MCP tools run by the gateway, on every provider (the native OpenAI upstream too, unless the
model passes them through), with the official `mcp` SDK as the client: streamable HTTP, or the
older SSE transport for a server that answers only that, or stdio for a server the config runs
as a process (see `engine.tools.mcp.sessions`).

Before a turn: each `mcp` tool's server is checked (the SSRF guard, `engine.tools.mcp.guard`), its
tools are listed (an `mcp_list_tools` item), unless the context already holds a listing of
that server, which is reused, and offered to the model as functions named
`mcp__<label>__<tool>`. The model's calls become `mcp_call` items and run when its turn ends
(see `engine.tools.rounds.Round`), on the session the listing opened. Later turns show the model
its earlier calls as the function calls they were (`as_functions`).

Header values and `authorization` are never echoed, stored or logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from rejoinder.config import McpLimitsConfig, McpServerConfig
from rejoinder.engine.tools.mcp import filters as mcp_filters
from rejoinder.engine.tools.mcp.guard import guard
from rejoinder.engine.tools.mcp.sessions import Held, StdioServer, outlasting
from rejoinder.engine.tools.mcp.views import as_choice, function_name, hosted, protocol_error, told
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import FunctionCall, FunctionCallOutput, Item
from rejoinder.protocol.tools import FunctionTool, Tools, relaxed

if TYPE_CHECKING:
    from mcp import Client

log = logging.getLogger("rejoinder.mcp")

REDACTED = "<redacted>"


class Server(NamedTuple):
    label: str
    url: str  # `stdio:<label>` for a process's
    headers: dict[str, str]
    process: StdioServer | None = None  # a server the config runs, over stdio
    guarded: list[str] | None = None  # hosts allowed past the address guard; None: a server the config names (not guarded)


class McpAccess(NamedTuple):
    """What the config says of MCP servers: hosts allowed past the guard, named servers, and
    those of them it runs as processes."""

    allowed_hosts: list[str]
    servers: list[McpServerConfig]
    processes: dict[str, StdioServer] = {}  # by label
    limits: McpLimitsConfig = McpLimitsConfig()

    async def close(self) -> None:
        for process in self.processes.values():
            await process.close()


class Offered(NamedTuple):
    """A function the model is offered, and the MCP tool it calls."""

    server: Server
    tool: str
    approval: bool = True  # a call waits for the client's approval (`require_approval`)


class Prepared(NamedTuple):
    offered: dict[str, Offered]  # function name → the MCP tool it calls
    listed: list[dict[str, Any]]  # `mcp_list_tools` items listed anew
    ran: list[dict[str, Any]]  # `mcp_call` items of calls approved by this request, run before the model's turn
    answers: list[Item]  # what the model sees of the approved calls: each call and its output
    sessions: Sessions  # opened by the listing and the approved calls, for the response's calls


async def prepare(tools: Tools, earlier: list[Item], own_input: list[Item], access: McpAccess, running: bool) -> Prepared:
    """Take the `mcp` tools out of `tools.hosted` and offer their servers' tools as functions;
    when the turn is `running` (not only checked), run the calls this request's
    `mcp_approval_response` items approve, and keep the sessions open for its own calls."""
    sessions = Sessions(access.limits)
    try:
        prepared = await _offer(tools, earlier, own_input, access, sessions, running)
    except BaseException:
        sessions.release()
        raise
    if not running:  # only checked: no call will follow
        sessions.release()
    return prepared


async def _offer(tools: Tools, earlier: list[Item], own_input: list[Item], access: McpAccess, sessions: Sessions, running: bool) -> Prepared:
    context = earlier + own_input
    offered: dict[str, Offered] = {}
    listed: list[dict[str, Any]] = []
    kept = []
    known = {raw["server_label"]: raw for raw in hosted(context, "mcp_list_tools") if isinstance(raw.get("server_label"), str)}
    for index, tool in tools.hosted:
        if tool.get("type") != "mcp":
            kept.append((index, tool))
            continue
        named = next((entry for entry in access.servers if entry.label == tool.get("server_label")), None)
        server = _server(tool, index, named, access)
        approval, allowed = mcp_filters.approval(tool.get("require_approval", "always"), index), mcp_filters.allowed(tool.get("allowed_tools"), index)
        if server.guarded is not None:
            await guard(server.url, server.guarded, f"tools[{index}].server_url")
        tools.echo[index] = _redacted(tool)
        listing_known = known.get(server.label)
        if listing_known is not None:
            found = [dict(entry) for entry in listing_known.get("tools") or () if isinstance(entry, dict) and isinstance(entry.get("name"), str)]
        else:
            found = await list_tools(server, sessions)
            listed.append({"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": server.label, "tools": found})
        for entry in found:
            if not allowed(entry):
                continue
            name = function_name(server.label, entry["name"])
            if any(function.name == name for function in tools.functions):
                raise invalid(f"tools[{index}].server_label", f"The MCP tool '{entry['name']}' of '{server.label}' clashes with another tool's name.")
            offered[name] = Offered(server, entry["name"], approval(entry))
            description = entry.get("description")
            if isinstance(tool.get("server_description"), str):  # what the client says of the server, for the model
                description = f"{description or ''}\n\n(From the MCP server '{server.label}': {tool['server_description']})".strip()
            tools.functions = [*tools.functions, FunctionTool(name, description, entry.get("input_schema") or {"type": "object"})]
    tools.hosted = kept
    tools.choice = as_choice(tools.choice, [(name, entry.server.label, entry.tool) for name, entry in offered.items()])
    answered = hosted(own_input, "mcp_approval_response")
    if answered:
        tools.choice = relaxed(tools.choice)  # the call it forced was asked for: the model may now answer
    ran, answers = await _approved(offered, context, answered, sessions) if running else ([], [])
    return Prepared(offered, listed, ran, answers, sessions)


async def _approved(
    offered: dict[str, Offered], context: list[Item], answered: list[dict[str, Any]], sessions: Sessions
) -> tuple[list[dict[str, Any]], list[Item]]:
    """The calls this request's approval responses (`answered`) approve, run now, and what the
    model sees of them (of a refused one, `as_functions` tells it). A client that keeps its own
    history (the Agents SDK) sends the request back in the input, and the call that ran in a
    later turn: that call is not run again."""
    asked = {raw["id"]: raw for raw in hosted(context, "mcp_approval_request")}
    done = {raw.get("approval_request_id") for raw in hosted(context, "mcp_call")}
    ran: list[dict[str, Any]] = []
    answers: list[Item] = []
    for response in answered:
        request = asked.get(response.get("approval_request_id"))
        if request is None:
            raise invalid("input", f"No MCP approval request '{str(response.get('approval_request_id'))[:64]}' in this response's context.")
        if request["id"] in done:
            continue
        name = function_name(request.get("server_label"), request.get("name"))
        if name not in offered:
            raise invalid("tools", f"The MCP tool '{request.get('name')}' of '{request.get('server_label')}' must be in 'tools' to run the approved call.")
        if not response.get("approve"):
            continue
        arguments = request.get("arguments") or "{}"
        output, error = await call(offered[name], arguments, sessions)
        ran.append({
            "id": new_id("mcp"), "type": "mcp_call", "server_label": request["server_label"], "name": request["name"], "arguments": arguments,
            "output": output, "error": error, "status": "completed" if output is not None else "failed", "approval_request_id": request["id"],
        })  # fmt: skip
        answers += [FunctionCall(request["id"], name, arguments), FunctionCallOutput(request["id"], told(output, error))]
    return ran, answers


def _server(tool: dict[str, Any], index: int, named: Any, access: McpAccess) -> Server:
    """The server a tool names: its own `server_url` (guarded), else the config's server of that
    label (the operator's choice: not guarded)."""
    label, url = tool.get("server_label"), tool.get("server_url") or (named.url if named is not None else None)
    if not isinstance(label, str) or not label or not label.replace("_", "").replace("-", "").isalnum():
        raise invalid(f"tools[{index}].server_label", "Invalid 'server_label': letters, digits, '_' and '-' only.")
    guarded = access.allowed_hosts if named is None or tool.get("server_url") is not None else None
    if guarded is None and named.command is not None:
        return Server(label, f"stdio:{label}", {}, access.processes[label])
    if not isinstance(url, str):
        raise invalid(f"tools[{index}].server_url", "An MCP tool needs its 'server_url' (or a 'server_label' the config names).", "missing_required_parameter")
    headers = {**(named.headers if named is not None else {}), **{str(k): str(v) for k, v in (tool.get("headers") or {}).items()}}
    if isinstance(tool.get("authorization"), str):
        headers["Authorization"] = f"Bearer {tool['authorization']}"
    return Server(label, url, headers, guarded=guarded)


def _redacted(tool: dict[str, Any]) -> dict[str, Any]:
    shown = {key: value for key, value in tool.items() if key != "authorization"}
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {key: REDACTED for key in shown["headers"]}
    return shown


_SSE: dict[str, bool] = {}  # server URL → it answered only the older SSE transport (learnt when listing)


def _client(server: Server, sse: bool | None, seconds: float) -> Client:
    """A session with the server (not yet open), whose requests may take `seconds`."""
    import httpx2
    from mcp import Client  # the SDK takes over half a second to import: only a gateway that uses MCP pays it
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    from rejoinder.engine.tools.mcp.guarded_http import http_client

    if sse if sse is not None else _SSE.get(server.url, False):

        def made(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: Any = None) -> httpx2.AsyncClient:
            return http_client(headers or {}, timeout or httpx2.Timeout(seconds), server.guarded)

        transport = sse_client(server.url, headers=server.headers, sse_read_timeout=seconds, httpx_client_factory=made)
        return Client(transport, read_timeout_seconds=seconds)
    http = http_client(server.headers, httpx2.Timeout(seconds), server.guarded)
    return Client(streamable_http_client(server.url, http_client=http), read_timeout_seconds=seconds)


async def list_tools(server: Server, sessions: Sessions) -> list[dict[str, Any]]:
    """A server's tools as `mcp_list_tools` lists them, over streamable HTTP, else over the older
    SSE transport (which the server's calls then use too); a 424 when neither answers."""
    found = None
    for sse in (False,) if server.process is not None else (False, True):
        try:
            async with asyncio.timeout(sessions.limits.list_timeout):
                found = await (await sessions.client(server, sse)).list_tools()
            break
        except Exception as exc:
            log.info("MCP server %s not listed over %s: %s", server.label, "SSE" if sse else "its transport", type(exc).__name__)
            sessions.drop(server)
    if found is None:
        log.warning("MCP server %s could not be listed", server.label)
        raise ApiError(424, f"Error retrieving tool list from MCP server: '{server.label}'.", param="tools", code="mcp_list_tools_failed")
    if len(_SSE) > 10_000:
        _SSE.clear()
    _SSE[server.url] = sse
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": dict(tool.input_schema or {"type": "object"}),
            "annotations": {"read_only": tool.annotations is not None and tool.annotations.read_only_hint is True},  # MCP's default: not
        }
        for tool in found.tools
    ]


class Sessions:
    """The MCP sessions of one response (or of its preparation): one per server, opened by its
    listing or its first call and used by all the others, released when the response ends; a
    server the config runs as a process keeps its own (see `engine.tools.mcp.sessions`)."""

    def __init__(self, limits: McpLimitsConfig) -> None:
        self.limits = limits
        self.held: dict[str, Held] = {}  # server URL → its session

    async def client(self, server: Server, sse: bool | None = None) -> Client:
        if server.process is not None:
            return await server.process.client()
        held = self.held.get(server.url)
        if held is None or not held.alive:
            seconds = outlasting(self.limits)
            held = Held(lambda: _client(server, sse, seconds), server.label, self.limits.list_timeout, seconds)
            self.held[server.url] = held
        return await held.client()

    def drop(self, server: Server) -> None:
        """A session that failed: the next use opens another."""
        held = self.held.pop(server.url, None)
        if held is not None:
            held.release()
        if server.process is not None:
            server.process.broken()

    def release(self) -> None:
        for held in self.held.values():
            held.release()
        self.held = {}


async def call(offered: Offered, arguments: str, sessions: Sessions, timeout: float | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """Run one tool with the model's JSON `arguments`, on the response's session with its
    server: its output, or its error as an `mcp_call` item holds it (the tool's own error
    content, or a protocol error for arguments that are not an object, or a server that failed
    or did not answer in time)."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return None, protocol_error("The arguments are not a JSON object.")
    timeout = timeout or sessions.limits.call_timeout
    try:
        async with asyncio.timeout(timeout):
            result = await (await sessions.client(offered.server)).call_tool(offered.tool, parsed)
    except TimeoutError:
        return None, protocol_error(f"The MCP tool '{offered.tool}' did not answer within {timeout:.3g} s.")
    except Exception as exc:
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        log.warning("MCP call %s.%s failed: %s", offered.server.label, offered.tool, type(exc).__name__)
        if not isinstance(exc, MCPError) or exc.code == CONNECTION_CLOSED:  # the session broke, not the call
            sessions.drop(offered.server)
        return None, protocol_error(f"The MCP server '{offered.server.label}' could not run '{offered.tool}' ({type(exc).__name__}).")
    text = _output(result)[: sessions.limits.max_output]
    if result.is_error:
        return None, {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text or "The tool failed."}]}
    return text, None


def _output(result: Any) -> str:
    """A call's result as the string `mcp_call.output` holds: its text parts (an embedded
    resource's text too, another part by its kind), else its structured content as JSON."""
    parts = []
    for part in result.content:
        kind = getattr(part, "type", None)
        if kind == "text":
            parts.append(part.text)
        elif kind == "resource" and isinstance(getattr(part.resource, "text", None), str):
            parts.append(part.resource.text)
        else:
            parts.append(f"[{kind}: {getattr(part, 'mime_type', None) or 'no text'}]")
    if not parts and result.structured_content is not None:
        return orjson.dumps(result.structured_content).decode()
    return "\n".join(parts)
