"""A fake SearXNG instance: `GET /search?q=…&format=json` answers its JSON results format, as an
instance with the json format enabled does. A query containing `fail` answers 500."""

from __future__ import annotations

from aiohttp import web
from fake_server import FakeServer

RESULTS = [
    {"url": "https://weather.example/oslo", "title": "Oslo weather", "content": "18C and clear skies in Oslo today.", "engine": "duckduckgo", "score": 1.0},
    {"url": "https://yr.example/oslo", "title": "Yr: Oslo", "content": "Forecast for Oslo.", "engine": "bing", "score": 0.7},
]


class FakeSearXNG(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/search", self._search)

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "")
        self.queries.append(query)
        assert request.query.get("format") == "json"
        if "fail" in query:
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response({"query": query, "number_of_results": len(RESULTS), "results": RESULTS, "answers": [], "suggestions": []})
