"""MCP sessions, each held open by a small task of its own.

anyio wants a session closed by the task that opened it, but a response's calls run in tasks of
their own, and its end should not wait for a session's goodbye (a DELETE over HTTP). So a
session lives in a task that opens it, hands it over, waits to be released, and closes it: any
task may use it, and releasing it costs the response nothing. A session nobody releases closes
itself after `lifetime`.

`StdioServer` holds the session of a server the config runs as a process, for the gateway's
life: every response shares it (an MCP session serves concurrent requests, each under its own
JSON-RPC id). The process starts at its first use, and again at the next use after it breaks;
one that fails to start is not tried again for `RETRY_AFTER` seconds, so a broken command costs
no process per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp import Client

    from rejoinder.config import McpLimitsConfig

log = logging.getLogger("rejoinder.mcp")

RETRY_AFTER = 5.0  # seconds before a server that failed to start is started again


def outlasting(limits: McpLimitsConfig) -> float:
    """Seconds the SDK's own timeouts on a session (and the session itself) last: past every
    bound of the gateway's (a response's MCP time, and one more call), so that a call is bounded
    by the gateway's own timeout, and its error says which bound it met."""
    return limits.response_time + limits.call_timeout


_RELEASED: set[asyncio.Task] = set()  # sessions closing after their release (kept from the garbage collector)


class Held:
    def __init__(self, connect: Callable[[], Client], name: str, open_timeout: float, lifetime: float | None) -> None:
        self.connect = connect
        self.name = name
        self.open_timeout = open_timeout  # seconds to open it
        self.lifetime = lifetime  # seconds it stays open at most (None: until released)
        self.ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._hold(), name=f"mcp-session-{name}")

    async def client(self) -> Client:
        """The open session (raises what opening it raised)."""
        return await asyncio.shield(self.ready)

    @property
    def alive(self) -> bool:
        return not self.task.done() and not self.stop.is_set()

    async def _hold(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self.open_timeout):
                    client = await stack.enter_async_context(self.connect())
                self.ready.set_result(client)
                async with asyncio.timeout(self.lifetime):
                    await self.stop.wait()
        except Exception as exc:  # a failure to open it, its `lifetime` over, or its server gone
            if not self.ready.done():
                self.ready.set_exception(exc)
            log.info("MCP session with %s ended: %s", self.name, type(exc).__name__)
        except asyncio.CancelledError:
            if not self.ready.done():
                self.ready.cancel()
            raise

    def release(self) -> None:
        """Close it, in its own time."""
        self.stop.set()
        if not self.task.done():
            _RELEASED.add(self.task)
            self.task.add_done_callback(_RELEASED.discard)

    async def close(self) -> None:
        """Close it, and wait until it is closed."""
        self.stop.set()
        try:
            await asyncio.wait_for(self.task, 10)
        except (Exception, asyncio.CancelledError) as exc:
            log.info("MCP session with %s closed with %s", self.name, type(exc).__name__)


class StdioServer:
    def __init__(self, label: str, command: str, args: list[str], env: dict[str, str], limits: McpLimitsConfig) -> None:
        self.label = label
        self.program = (command, args, env)
        self.limits = limits
        self.held: Held | None = None
        self.retry_at = 0.0  # monotonic time it may be started again, after it failed to start

    async def client(self) -> Client:
        """The live session, the process started (again) when there is none."""
        if self.held is None or not self.held.alive:
            if time.monotonic() < self.retry_at:
                raise ConnectionError(f"the MCP server {self.label} failed to start; not tried again for {RETRY_AFTER:g} s")
            from mcp import Client  # imported at first use (see `engine.tools.mcp.client._client`)
            from mcp.client.stdio import StdioServerParameters

            command, args, env = self.program
            parameters = StdioServerParameters(command=command, args=args, env=env or None)
            seconds = outlasting(self.limits)
            self.held = Held(
                lambda: Client(parameters, read_timeout_seconds=seconds), self.label, self.limits.call_timeout, None
            )  # started within a call's time
        try:
            return await self.held.client()
        except Exception:
            self.retry_at = time.monotonic() + RETRY_AFTER
            raise

    def broken(self) -> None:
        """A request to it failed with the transport's fault: start it anew at the next use."""
        if self.held is not None:
            self.held.release()
            self.held = None

    async def close(self) -> None:
        if self.held is not None:
            await self.held.close()


def stdio_servers(servers: list[Any], limits: McpLimitsConfig) -> dict[str, StdioServer]:
    """The config's `mcp_servers` that give a `command`, by label (none runs before its first use)."""
    return {entry.label: StdioServer(entry.label, entry.command, list(entry.args), dict(entry.env), limits) for entry in servers if entry.command}
