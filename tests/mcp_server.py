"""A real MCP server for the tests, from the official `mcp` package, over streamable HTTP on
127.0.0.1 (`python tests/mcp_server.py PORT`), or over the older SSE transport alone
(`… PORT sse`). Its tools add, fail, sleep and answer at length; `GET /stats` counts
the JSON-RPC methods it was sent (so a test can see the gateway reuse a tool list)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("docs")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> str:
    """Add two whole numbers."""
    return str(a + b)


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("the tool broke")


@server.tool()
async def nap(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return "rested"


@server.tool()
def picture() -> list:
    """An image and a text resource, no plain text."""
    from mcp_types import EmbeddedResource, ImageContent, TextResourceContents

    resource = TextResourceContents(uri="file:///notes.txt", text="the notes", mime_type="text/plain")
    return [ImageContent(type="image", data="iVBORw0KGgo=", mime_type="image/png"), EmbeddedResource(type="resource", resource=resource)]


@server.tool()
def big(size: int) -> str:
    """A long answer."""
    return "x" * size


@server.tool(name="docs.search_every_page_of_the_whole_manual_for_a_phrase")
def search(phrase: str) -> str:
    """A name no upstream takes as a function's: a dot, and too long once prefixed."""
    return f"found: {phrase}"


class Counting:
    """ASGI middleware: counts each JSON-RPC method in the POSTs, and answers `GET /stats`."""

    def __init__(self, app) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app
        self.counts: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] == "http" and scope["path"] == "/stats":
            body = json.dumps({"methods": self.counts, "headers": self.headers}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        for entry in found if isinstance(found, list) else [found]:
            if isinstance(entry, dict) and isinstance(entry.get("method"), str):
                self.counts[entry["method"]] += 1
        self.headers.append({key.decode(): value.decode() for key, value in scope["headers"] if key.startswith(b"x-")})
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


if __name__ == "__main__":  # PORT [sse]: the older SSE transport alone, at /sse
    app = server.sse_app() if sys.argv[2:] == ["sse"] else server.streamable_http_app()
    uvicorn.run(Counting(app), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
