"""The MCP address guard as every connection opens, with the gateway's own MCP HTTP client: a
name that resolves to a loopback address once the request was let through (DNS rebinding, by a
resolver stub) and a redirect from an allowed server to one that is not are refused before
anything connects. Only loopback addresses that are not allow-listed are ever aimed at."""

from __future__ import annotations

import asyncio
import socket

import httpx2
import pytest
from aiohttp import web
from gateway import free_port

from rejoinder.engine.tools.mcp.guarded_http import http_client

TIMEOUT = httpx2.Timeout(5)


def _resolving(name: str, address: str):
    """A stub of the loop's resolver: `name` resolves to `address`, anything else as usual."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, *args, **kwargs):
        if host == name:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return await real(host, port, *args, **kwargs)

    loop.getaddrinfo = getaddrinfo


def test_a_name_that_turns_to_a_private_address_is_refused_as_it_connects():
    async def run() -> None:
        _resolving("rebind.example", "127.0.0.2")
        async with http_client({}, TIMEOUT, allowed_hosts=[]) as client:
            with pytest.raises(httpx2.ConnectError, match="not a public address"):
                await client.get("https://rebind.example:8443/mcp")
        _resolving("six.example", "::1")
        async with http_client({}, TIMEOUT, allowed_hosts=[]) as client:
            with pytest.raises(httpx2.ConnectError, match="not a public address"):
                await client.get("https://six.example/mcp")

    asyncio.run(run())


def test_a_redirect_to_an_address_that_is_not_allowed_is_refused():
    async def run() -> None:
        port = free_port()

        async def hop(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"https://127.0.0.2:{port}/mcp")

        async def down(request: web.Request) -> web.Response:  # to plain http, on a name the stub resolves to a loopback address
            raise web.HTTPTemporaryRedirect(f"http://rebind.example:{port}/mcp")

        async def here(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/hop", hop)
        app.router.add_get("/down", down)
        app.router.add_get("/here", here)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with http_client({}, TIMEOUT, allowed_hosts=[f"127.0.0.1:{port}"]) as client:
                assert (await client.get(f"http://127.0.0.1:{port}/here")).text == "ok"  # the allowed host itself
                with pytest.raises(httpx2.ConnectError, match="not a public address"):
                    await client.get(f"http://127.0.0.1:{port}/hop")
                _resolving("rebind.example", "127.0.0.2")
                with pytest.raises(httpx2.UnsupportedProtocol, match="plain http to 'rebind.example'"):  # refused before it resolves
                    await client.get(f"http://127.0.0.1:{port}/down")
            async with http_client({}, TIMEOUT, allowed_hosts=None) as client:  # a server the config names: not guarded
                assert (await client.get(f"http://127.0.0.1:{port}/here")).text == "ok"
        finally:
            await runner.cleanup()

    asyncio.run(run())
