"""The HTTP client the gateway reaches every MCP server with: for a server a request named,
each connection it opens (the first, a reconnection, a redirect's) is checked by the address
guard (`guard`) as it opens and made to the very address that was checked, and a redirect may
not leave https for plain http to a host not listed. Imported with the first MCP session, so a
gateway that never calls an MCP server does not hold httpx.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2

from rejoinder.engine.tools.mcp.guard import Refused, listed, public_address


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Opens a connection only to an address the guard lets through (see the module's doc)."""

    def __init__(self, allowed_hosts: list[str]) -> None:
        self.allowed_hosts = allowed_hosts
        self.inner = httpcore2.AnyIOBackend()  # what httpcore picks under asyncio

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        if not listed(host, port, self.allowed_hosts):
            try:
                host = await public_address(host, port)
            except Refused as refused:
                raise httpcore2.ConnectError(str(refused)) from None
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("MCP servers are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every MCP client: making one loads the trust store, which costs tens
    of milliseconds, far more than the rest of a session."""
    return httpcore2.default_ssl_context()


def http_client(headers: dict[str, str], timeout: httpx2.Timeout, allowed_hosts: list[str] | None) -> httpx2.AsyncClient:
    """A client for one MCP session; guarded when `allowed_hosts` is given (a server a request
    named), not for a server the config names."""
    transport = httpx2.AsyncHTTPTransport(verify=tls())
    if allowed_hosts is None:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, transport=transport, follow_redirects=True)
    # httpx takes no network backend: its pool is rebuilt with the guarded one (httpx2 is pinned)
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=tls(), network_backend=GuardedBackend(allowed_hosts))

    async def https_only(request: httpx2.Request) -> None:  # every request, a redirect's too
        url = request.url
        if url.scheme != "https" and not listed(url.host, url.port or 80, allowed_hosts):
            raise httpx2.UnsupportedProtocol(f"plain http to '{url.host}' (only hosts in mcp_allow_hosts may use it)", request=request)

    return httpx2.AsyncClient(headers=headers, timeout=timeout, transport=transport, follow_redirects=True, event_hooks={"request": [https_only]})
