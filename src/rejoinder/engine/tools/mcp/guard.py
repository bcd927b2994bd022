"""The address guard for MCP servers a request names (the HTTP client that keeps to it is
`guarded_http`'s).

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
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

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
