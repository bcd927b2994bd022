"""The address guard for MCP servers a request names, and the HTTP client the gateway reaches
every MCP server with.

A server URL must be https, and every address its host resolves to must be public (not
loopback, private, link-local, reserved or multicast), unless its host (or host:port) is in
`mcp_allow_hosts`, which may also use plain http. `guard` refuses a URL with a 400 before
anything connects; then, for as long as the session lives, every connection its client opens
(the first, a reconnection, a redirect's) is checked again as it opens, and made to the very
address that was checked: a name that resolves differently a moment later (DNS rebinding)
gains nothing; and a redirect may not leave https for plain http to a host not listed. Servers the config names are the operator's choice and pass unchecked.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

from rejoinder.protocol.errors import invalid


class Refused(Exception):
    """A host that is not a public address, or that does not resolve."""


def listed(host: str, port: int, allowed_hosts: Iterable[str]) -> bool:
    return host in allowed_hosts or f"{host}:{port}" in allowed_hosts


async def public_address(host: str, port: int) -> str:
    """The address to connect to: the first the host resolves to, if every one is public."""
    try:
        addresses = [info[4][0] for info in await asyncio.get_running_loop().getaddrinfo(host, port)]
    except OSError:
        raise Refused(f"the host '{host}' does not resolve") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise Refused(f"'{host}' is not a public address (list it in mcp_allow_hosts to allow it)")
    return addresses[0]


async def guard(url: str, allowed_hosts: list[str], param: str) -> None:
    """Refuse a server URL that could reach this machine or its network (see the module's doc)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise invalid(param, f"Invalid '{param}': not a URL.") from None
    allowed = listed(host, port, allowed_hosts)
    if parts.scheme not in ("http", "https") or not host or (parts.scheme == "http" and not allowed):
        raise invalid(param, f"Invalid '{param}': an MCP server must be reached over https.")
    if not allowed:
        try:
            await public_address(host, port)
        except Refused as refused:
            raise invalid(param, f"Invalid '{param}': {refused}.") from None


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
