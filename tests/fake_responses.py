"""A fake native Responses API at `/v1/responses`, as OpenAI (or vLLM) serves it.

A scenario is the final output; the stream is the official event sequence for it, text and
arguments split into the pieces given. `store: false` requests are answered as OpenAI does:
with `encrypted_content` on reasoning items when it was asked for.
"""

from __future__ import annotations

import copy
import json

from aiohttp import web
from fake_server import FakeServer, ImplicitCache, fake_count, sse

ENCRYPTED = "gAAAAABo-upstream-encrypted-reasoning-blob"
USAGE = {
    "input_tokens": 31,
    "input_tokens_details": {"cached_tokens": 8},
    "output_tokens": 42,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 73,
}

SCENARIOS = {
    "text": [("message", ["Hello", ", world", "!"])],
    "reasoning-tool": [("reasoning", "rs_up1", ["Need the", " weather."]), ("function_call", "call_up1", "get_weather", ['{"city":', ' "Oslo"}'])],
    "incomplete": [("message", ["Once upon"])],
    "failed": [("message", ["Partial"])],
    "web-search": [("web_search_call", "ws_up1", "weather in Oslo"), ("message", ["Oslo: ", "18C, clear."])],
}
CITATION = {"type": "url_citation", "start_index": 0, "end_index": 4, "url": "https://weather.example/oslo", "title": "Oslo weather"}


def _item(spec: tuple, index: int, scenario: str) -> dict:
    kind = spec[0]
    if kind == "web_search_call":
        return {"id": spec[1], "type": "web_search_call", "status": "completed", "action": {"type": "search", "query": spec[2]}}
    if kind == "message" and scenario == "web-search":
        return {**_item(spec, index, ""), "content": [{"type": "output_text", "text": "".join(spec[1]), "annotations": [CITATION], "logprobs": []}]}
    if kind == "message":
        return {
            "id": f"msg_up{index}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "".join(spec[1]), "annotations": [], "logprobs": []}],
        }
    if kind == "function_call":
        return {"id": f"fc_up{index}", "type": "function_call", "status": "completed", "call_id": spec[1], "name": spec[2], "arguments": "".join(spec[3])}
    return {"id": spec[1], "type": "reasoning", "summary": [{"type": "summary_text", "text": "".join(spec[2])}], "encrypted_content": ENCRYPTED}


def _response(model: str, scenario: str, specs: list[tuple], include: list[str]) -> dict:
    output = [_item(spec, i, scenario) for i, spec in enumerate(specs)]
    if "reasoning.encrypted_content" not in include:
        for item in output:
            item.pop("encrypted_content", None)
    response = {
        "id": "resp_upstream1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": model,
        "output": output,
        "usage": USAGE,
        "error": None,
        "incomplete_details": None,
    }
    if scenario == "incomplete":
        response.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    return response


def _events(response: dict, specs: list[tuple]) -> list[dict]:
    events: list[dict] = []

    def emit(kind: str, **fields) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    start = {**copy.deepcopy(response), "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for at, (spec, item) in enumerate(zip(specs, response["output"])):
        ids = {"item_id": item["id"], "output_index": at}
        if item["type"] == "web_search_call":
            emit("response.output_item.added", output_index=at, item={**item, "status": "in_progress"})
            for stage in ("in_progress", "searching", "completed"):
                emit(f"response.web_search_call.{stage}", **ids)
        elif item["type"] == "message":
            emit("response.output_item.added", output_index=at, item={**item, "status": "in_progress", "content": []})
            emit("response.content_part.added", **ids, content_index=0, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            for piece in spec[1]:
                emit("response.output_text.delta", **ids, content_index=0, delta=piece, logprobs=[])
            for index, annotation in enumerate(item["content"][0]["annotations"]):
                emit("response.output_text.annotation.added", **ids, content_index=0, annotation_index=index, annotation=annotation)
            emit("response.output_text.done", **ids, content_index=0, text=item["content"][0]["text"], logprobs=[])
            emit("response.content_part.done", **ids, content_index=0, part=item["content"][0])
        elif item["type"] == "function_call":
            emit("response.output_item.added", output_index=at, item={**item, "status": "in_progress", "arguments": ""})
            for piece in spec[3]:
                emit("response.function_call_arguments.delta", **ids, delta=piece)
            emit("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=at, item={"id": item["id"], "type": "reasoning", "summary": []})
            emit("response.reasoning_summary_part.added", **ids, summary_index=0, part={"type": "summary_text", "text": ""})
            for piece in spec[2]:
                emit("response.reasoning_summary_text.delta", **ids, summary_index=0, delta=piece)
            emit("response.reasoning_summary_text.done", **ids, summary_index=0, text=item["summary"][0]["text"])
            emit("response.reasoning_summary_part.done", **ids, summary_index=0, part=item["summary"][0])
        emit("response.output_item.done", output_index=at, item=item)
    emit("response.incomplete" if response["status"] == "incomplete" else "response.completed", response=response)
    return events


class FakeResponses(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.cache = ImplicitCache()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._handle)
        app.router.add_post("/v1/responses/input_tokens", self._count)

    async def _count(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        assert not {"stream", "store", "include"} & set(body), body
        return web.json_response({"object": "response.input_tokens", "input_tokens": fake_count(body)})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        scenario = body["model"].split("-", 1)[-1]
        if scenario == "error-429":
            return web.json_response(
                {"error": {"message": "Rate limit reached for gpt-5 on tokens per min.", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}},
                status=429,
                headers={"retry-after": "3"},
            )
        if scenario == "error-400":
            return web.json_response(
                {"error": {"message": "Invalid value for 'input'.", "type": "invalid_request_error", "param": "input", "code": None}}, status=400
            )
        specs = SCENARIOS.get(scenario, SCENARIOS["text"])
        if scenario in ("mcp-add", "file-search"):  # call a tool the gateway runs, then answer from its output
            last = body["input"][-1] if isinstance(body["input"], list) else {}
            told = last.get("output") if last.get("type") == "function_call_output" else None
            called = ("mcp__docs__add", ['{"a": 2,', ' "b": 3}']) if scenario == "mcp-add" else ("file_search", ['{"queries": ["launch code",', ' "pelican"]}'])
            call = ("function_call", "call_up1", *called)
            specs = [("message", ["The tool said: ", told])] if told else [call]
        response = _response(body["model"], scenario, specs, body.get("include") or [])
        if scenario == "agent":  # usage of its own: the request's size, and what OpenAI's cache would hold of it
            prompt, cached = self.cache.account([body.get("tools"), body.get("instructions"), *body["input"]])
            response["usage"] = {**USAGE, "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "total_tokens": prompt + 42}
        if not body.get("stream"):
            return web.json_response(response)
        events = _events(response, specs)
        if scenario == "failed":
            failed = {**response, "status": "failed", "error": {"code": "server_error", "message": "The model produced invalid content."}}
            events = events[:5] + [{"type": "response.failed", "sequence_number": 5, "response": failed}]
        return await sse(request, [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])
