"""A fake Gemini API: `/v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.

Scenarios are lists of `GenerateContentResponse` chunks as the SSE stream sends them (no
`[DONE]`; the last chunk carries `finishReason` and `usageMetadata`); the non-streaming body
joins their parts. Errors use Google's RPC error shape, `RetryInfo` included.
"""

from __future__ import annotations

import json
import re
import time
import zlib

from aiohttp import web
from fake_chat import SHELL_ARGUMENTS, SHELL_TOOL
from fake_server import FakeServer, ImplicitCache, fake_count, sse

THOUGHT_SIGNATURE = "CiQB0e2Kb9thought-signature-for-the-call=="
USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 40, "thoughtsTokenCount": 19, "cachedContentTokenCount": 4}


def _chunk(parts: list[dict], finish: str | None = None, usage: dict | None = None) -> dict:
    candidate: dict = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "fake-response-id"}
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


GROUNDED = "Il fait beau à Paris"  # 20 characters, 21 bytes in UTF-8: Gemini's offsets are bytes
GROUNDING = {
    "webSearchQueries": ["météo Paris"],
    "searchEntryPoint": {"renderedContent": "<style>.container{}</style><div class=container></div>"},
    "groundingChunks": [{"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbCdEf", "title": "meteo.example"}}],
    "groundingSupports": [
        {"segment": {"startIndex": 0, "endIndex": len(GROUNDED.encode()), "text": GROUNDED}, "groundingChunkIndices": [0], "confidenceScores": [0.97]}
    ],
}


def _grounded() -> list[dict]:
    """Google Search grounding: the answer, then its metadata on the last chunk's candidate."""
    last = _chunk([{"text": " : 21°C."}], "STOP", USAGE)
    last["candidates"][0]["groundingMetadata"] = GROUNDING
    return [_chunk([{"text": GROUNDED}]), last]


SCENARIOS: dict[str, list[dict]] = {
    "search": _grounded(),
    "text": [_chunk([{"text": "Hello"}]), _chunk([{"text": ", world"}]), _chunk([{"text": "!"}], "STOP", USAGE)],
    "thinking": [
        _chunk([{"text": "Weighing the", "thought": True}]),
        _chunk([{"text": " options.", "thought": True}]),
        _chunk([{"text": "Answer."}], "STOP", USAGE),
    ],
    "tools-parallel": [
        _chunk(
            [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": THOUGHT_SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {"zone": "CET"}}},
            ],
            "STOP",
            USAGE,
        )
    ],
    "json": [_chunk([{"text": '{"city": "Paris", '}]), _chunk([{"text": '"temperature_c": 21}'}], "STOP", USAGE)],
    "max-tokens": [_chunk([{"text": "Once upon"}], "MAX_TOKENS", USAGE)],
    "safety": [_chunk([{"text": ""}], "SAFETY", USAGE)],
    "cut": [_chunk([{"text": "Partial"}])],
    "midstream-error": [_chunk([{"text": "Partial"}]), {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}],
}

ERRORS = {
    "error-400": (400, {"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}),
    "error-key": (
        400,
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
            }
        },
    ),
    "error-429": (
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            }
        },
    ),
    "error-503": (503, {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}),
}


def _joined(chunks: list[dict]) -> dict:
    """The non-streaming response: every chunk's parts in one candidate, adjacent text joined."""
    parts: list[dict] = []
    for chunk in chunks:
        for part in chunk["candidates"][0]["content"]["parts"]:
            last = parts[-1] if parts else None
            if (
                last is not None
                and "text" in part
                and "text" in last
                and bool(last.get("thought")) == bool(part.get("thought"))
                and not part.get("thoughtSignature")
            ):
                last["text"] += part["text"]
            else:
                parts.append(dict(part))
    final = chunks[-1]
    joined = _chunk(parts, final["candidates"][0].get("finishReason"), final.get("usageMetadata"))
    if "groundingMetadata" in final["candidates"][0]:
        joined["candidates"][0]["groundingMetadata"] = final["candidates"][0]["groundingMetadata"]
    return joined


CACHED_FIELDS = ("systemInstruction", "tools", "toolConfig")


class FakeGemini(FakeServer):
    """Gemini, with its explicit context caches (`cachedContents`): made from a model's
    `contents`, `systemInstruction`, `tools` and `toolConfig` with a `ttl`, refused under 1,024
    tokens (the fakes' count: JSON length over four); a request names one in `cachedContent`
    and may then set none of those fields itself, as Gemini requires."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = ImplicitCache(minimum=1024, step=1)
        self.cached_contents: dict[str, tuple[str, int, float]] = {}  # name → (model, tokens, expiry)
        self.embedded: list[dict] = []  # batchEmbedContents requests

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._handle)
        app.router.add_post("/v1beta/cachedContents", self._cache)

    async def _cache(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        ttl = re.fullmatch(r"(\d+(?:\.\d+)?)s", body.get("ttl", ""))
        if not str(body.get("model", "")).startswith("models/") or ttl is None or set(body) - {"model", "ttl", "contents", *CACHED_FIELDS}:
            return web.json_response({"error": {"code": 400, "message": "Invalid CachedContent.", "status": "INVALID_ARGUMENT"}}, status=400)
        tokens = sum(len(json.dumps(body[field], sort_keys=True)) // 4 for field in ("contents", *CACHED_FIELDS) if field in body)
        if tokens < 1024:
            message = f"Cached content is too small. total_token_count={tokens}, min_total_token_count=1024"
            return web.json_response({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, status=400)
        name = f"cachedContents/fake{len(self.cached_contents)}"
        self.cached_contents[name] = (body["model"], tokens, time.monotonic() + float(ttl.group(1)))
        stamp = "2026-12-06T12:00:00.000000Z"
        return web.json_response(
            {"name": name, "model": body["model"], "createTime": stamp, "updateTime": stamp, "expireTime": stamp, "usageMetadata": {"totalTokenCount": tokens}}
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        if action == "batchEmbedContents":  # made up: each word hashed into one of 64 dimensions; kept apart, in `embedded`
            body = await request.json()
            body["key"] = request.headers.get("x-goog-api-key")
            self.embedded.append(body)
            embeddings = []
            for each in body["requests"]:
                values = [0.0] * 64
                for word in re.findall(r"\w+", " ".join(part["text"] for part in each["content"]["parts"]).lower()):
                    values[zlib.crc32(word.encode()) % 64] += 1.0
                embeddings.append({"values": values})
            return web.json_response({"embeddings": embeddings})
        await self.record(request)
        scenario = model.split("-", 1)[-1]
        if scenario in ERRORS:
            status, error = ERRORS[scenario]
            return web.json_response(error, status=status)
        chunks = SCENARIOS.get(scenario, SCENARIOS["text"])
        if scenario == "codex-shell":  # call Codex's shell tool, then answer once its output is back
            body = self.requests[-1]
            answered = any("functionResponse" in part for content in body["contents"] for part in content["parts"])
            call = {"functionCall": {"name": SHELL_TOOL, "args": json.loads(SHELL_ARGUMENTS)}}
            chunks = SCENARIOS["text"] if answered else [_chunk([call], "STOP", USAGE)]
        if scenario in ("mcp-add", "file-search"):  # call a tool the gateway runs, then answer from its output
            last = self.requests[-1]["contents"][-1]["parts"]
            told = [str(part["functionResponse"]["response"].get("output")) for part in last if "functionResponse" in part]
            called = ("mcp__docs__add", {"a": 2, "b": 3}) if scenario == "mcp-add" else ("file_search", {"queries": ["launch code", "pelican"]})
            call = {"functionCall": {"name": called[0], "args": called[1]}}
            chunks = [_chunk([{"text": "The tool said: " + told[-1]}], "STOP", USAGE)] if told else [_chunk([call], "STOP", USAGE)]
        held = 0  # tokens of the explicit cache the request names
        if "cachedContent" in self.requests[-1]:
            body = self.requests[-1]
            entry = self.cached_contents.get(body["cachedContent"])
            if entry is None or entry[2] < time.monotonic() or entry[0] != f"models/{model}":
                return web.json_response(
                    {"error": {"code": 403, "message": "CachedContent not found (or permission denied)", "status": "PERMISSION_DENIED"}}, status=403
                )
            if set(CACHED_FIELDS) & set(body):
                message = "CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config."
                return web.json_response({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, status=400)
            held = entry[1]
        if scenario == "agent":  # usage of its own: the request's size, and what Gemini's caches hold of it
            body = self.requests[-1]
            prompt, cached = self.cache.account([body.get("cachedContent"), body.get("tools"), body.get("systemInstruction"), *body["contents"]])
            prompt, cached = prompt + held, cached + held
            usage = {"promptTokenCount": prompt, "candidatesTokenCount": 9, "totalTokenCount": prompt + 9, "cachedContentTokenCount": cached}
            chunks = [*chunks[:-1], _chunk(chunks[-1]["candidates"][0]["content"]["parts"], "STOP", usage)]
        if action == "countTokens":  # the whole request under generateContentRequest, as Gemini takes it
            whole = self.requests[-1]["generateContentRequest"]
            assert whole["model"] == f"models/{model}" and "contents" in whole, whole
            return web.json_response({"totalTokens": fake_count(self.requests[-1])})
        if action == "generateContent":
            return web.json_response(_joined(chunks))
        assert action == "streamGenerateContent" and request.query.get("alt") == "sse"
        frames = [b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n" for chunk in chunks]
        return await sse(request, frames)
