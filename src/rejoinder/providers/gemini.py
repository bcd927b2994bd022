"""Google's Gemini API: `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.

Out: instructions and system/developer messages become `systemInstruction`; turns become
`contents` with roles `user` / `model`, merged so they alternate; function calls become
`functionCall` parts and their outputs `functionResponse` parts (Gemini matches results by
name, so the name is looked up from the call); images and files become `inlineData` or
`fileData`; `text.format` becomes `responseMimeType` + `responseJsonSchema`; `reasoning`
becomes `thinkingConfig`.

Back: candidate parts become text, thought-summary and tool-call blocks; a part's
`thoughtSignature` is sealed into a reasoning item and put back on the same part of the model
turn next time, as Gemini requires for multi-turn function calling with thinking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import (
    FunctionCall,
    FunctionCallOutput,
    HostedItem,
    InputFile,
    InputImage,
    InputText,
    Message,
    OutputText,
    Reasoning,
    message_text,
    spoken_text,
)
from rejoinder.protocol.request import TextFormatJsonObject, TextFormatJsonSchema
from rejoinder.protocol.tools import NamedFunction
from rejoinder.providers import web_search
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, ModelRequest, ReasoningEnd, Usage
from rejoinder.providers.failures import cut_short, read_json, stream_error
from rejoinder.providers.gemini_cache import ContextCache
from rejoinder.providers.http import Upstream, UpstreamLimits, versioned
from rejoinder.providers.state import seal, unseal
from rejoinder.providers.translate import TextRun, arguments, data_url, guess_type, offered_tools, sampling
from rejoinder.providers.web_search import Searches, citation

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
THINKING_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}


class Gemini:
    hosted_tool_types = web_search.HOSTED_TOOL_TYPES  # Google Search grounding

    def __init__(self, base_url: str | None, api_key: str | None, limits: UpstreamLimits, caching: str = "auto") -> None:
        self.base = versioned(base_url or DEFAULT_BASE_URL, "v1beta")
        self.api_key = api_key
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        self.upstream = Upstream(headers, api_key, limits)
        # explicit context caching, when the model's `prompt_caching` asks for it (see `providers.gemini_cache`)
        self.context = ContextCache(self.base, self.upstream) if caching == "cached_contents" else None

    async def stream(self, request: ModelRequest) -> AsyncIterator[list[Delta]]:
        model = quote(request.upstream_model, safe="")
        url = f"{self.base}/models/{model}:streamGenerateContent?alt=sse" if request.stream else f"{self.base}/models/{model}:generateContent"
        body = contents_body(request)
        if self.context is not None:
            body = await self.context.applied(body, request.upstream_model, request.settings)
        async with self.upstream.call(url, orjson.dumps(body), request.stream) as reply:
            translator = _Translator(Searches(request.settings.include))
            if not request.stream:
                yield translator.chunk(self._checked(read_json(await reply.body()))) + translator.finish()
                return
            async for deltas in reply.deltas(lambda data: translator.chunk(self._checked(read_json(data))), translator):
                yield deltas

    async def count_tokens(self, request: ModelRequest) -> int:
        """Gemini's own count (`:countTokens`) of the whole request as it would go."""
        model = quote(request.upstream_model, safe="")
        whole = {"model": f"models/{request.upstream_model}", **contents_body(request)}
        return await self.upstream.count(f"{self.base}/models/{model}:countTokens", {"generateContentRequest": whole}, "totalTokens")

    def _checked(self, chunk: Any) -> dict[str, Any]:
        """A chunk, unless it is an error the upstream reported in place of one."""
        if isinstance(chunk, dict) and "error" in chunk:
            raise stream_error(chunk, self.api_key)
        return chunk


class _Translator:
    """Candidate parts → deltas. Text and thought text stream across chunks into one open
    block each; a function call arrives whole in one part."""

    def __init__(self, searches: Searches) -> None:
        self.searches = searches
        self.grounding: dict[str, Any] | None = None  # the candidate's groundingMetadata: it searched
        self.text = ""  # the open text block's text, for the grounding's byte offsets
        self.run = TextRun()
        self.usage = Usage()
        self.reason: str | None = None
        self.done = False  # a candidate's finishReason came: that chunk is Gemini's last
        self.called_tool = False
        self.late_signature: str | None = None  # a text part's signature, placed after the text

    def chunk(self, chunk: dict[str, Any]) -> list[Delta]:
        out: list[Delta] = []
        if chunk.get("usageMetadata"):
            self._usage(chunk["usageMetadata"])
        candidates = chunk.get("candidates") or []
        if not candidates:
            if (chunk.get("promptFeedback") or {}).get("blockReason"):
                self.reason = "content_filter"
            return out
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or []:
            signature = part.get("thoughtSignature")
            if "functionCall" in part:
                out += self.run.close()
                if signature:
                    out.append(ReasoningEnd(seal("gemini", {"signature": signature})))
                call = part["functionCall"]
                block = self.run.new_block()
                self.called_tool = True
                out += [
                    BlockStart(block, "tool_call", call_id=call.get("id") or new_id("call"), name=call.get("name", "")),
                    BlockDelta(block, orjson.dumps(call.get("args") or {}).decode()),
                    BlockEnd(block),
                ]
                continue
            if part.get("thought"):
                if part.get("text"):
                    out += self.run.add("summary", part["text"])
                if signature:
                    out += self.run.close() + [ReasoningEnd(seal("gemini", {"signature": signature}))]
                continue
            if part.get("text"):
                if self.run.open is None or self.run.open[0] != "text":
                    self.text = ""
                self.text += part["text"]
                out += self.run.add("text", part["text"])
            if signature:
                self.late_signature = signature
        if candidate.get("groundingMetadata"):
            self.grounding = candidate["groundingMetadata"]
        finish = candidate.get("finishReason")
        if finish:
            self.done = True
            self.reason = "length" if finish == "MAX_TOKENS" else "content_filter" if finish in _FILTERED else "stop"
        return out

    def _citations(self) -> list[Delta]:
        """The grounding's supports as `url_citation`s on the open text block (Gemini counts
        their offsets in UTF-8 bytes of the text)."""
        if self.grounding is None or self.run.open is None or self.run.open[0] != "text":
            return []
        encoded = self.text.encode()
        chunks = self._sources()
        out: list[Delta] = []
        for support in self.grounding.get("groundingSupports") or ():
            segment = support.get("segment") or {}
            start = len(encoded[: segment.get("startIndex") or 0].decode(errors="ignore"))
            end = len(encoded[: segment.get("endIndex") or 0].decode(errors="ignore"))
            for index in support.get("groundingChunkIndices") or ():
                web = chunks[index] if isinstance(index, int) and 0 <= index < len(chunks) else {}
                if isinstance(web.get("uri"), str):
                    out.append(citation(self.run.open[1], web["uri"], web.get("title") or "", start, end))
        return out

    def _sources(self) -> list[dict[str, Any]]:
        """The grounding's web sources, in the order its supports index them."""
        return [chunk.get("web") or {} for chunk in (self.grounding or {}).get("groundingChunks") or ()]

    def _usage(self, meta: dict[str, Any]) -> None:
        thoughts = meta.get("thoughtsTokenCount") or 0
        self.usage = Usage(
            input_tokens=meta.get("promptTokenCount") or 0,
            output_tokens=(meta.get("candidatesTokenCount") or 0) + thoughts,
            cached_tokens=meta.get("cachedContentTokenCount") or 0,
            reasoning_tokens=thoughts,
        )

    def finish(self) -> list[Delta]:
        if self.reason is None:
            raise cut_short()
        out = self._citations() + self.run.close()
        if self.grounding is not None:
            sources = self._sources()
            queries = [query for query in self.grounding.get("webSearchQueries") or () if isinstance(query, str)]
            out += self.searches.end("grounding", queries, [web["uri"] for web in sources if isinstance(web.get("uri"), str)])
        if self.late_signature:
            out.append(ReasoningEnd(seal("gemini", {"signature": self.late_signature})))
        reason = "tool_calls" if self.reason == "stop" and self.called_tool else self.reason
        return out + [Finish(reason, self.usage)]  # type: ignore[arg-type]


_GENERATION_NAMES = {"stop": "stopSequences", "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty", "seed": "seed"}


def contents_body(request: ModelRequest) -> dict[str, Any]:
    params = request.settings
    system, contents = _contents(request)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config: dict[str, Any] = {}
    if params.temperature is not None:
        config["temperature"] = params.temperature
    if params.top_p is not None:
        config["topP"] = params.top_p
    if params.max_output_tokens is not None:
        config["maxOutputTokens"] = params.max_output_tokens
    chosen = sampling(params, "gemini", ("stop", "presence_penalty", "frequency_penalty", "seed"))
    config.update({_GENERATION_NAMES[name]: value for name, value in chosen.items()})
    fmt = params.text.format if params.text is not None else None
    if isinstance(fmt, (TextFormatJsonSchema, TextFormatJsonObject)):
        config["responseMimeType"] = "application/json"
        if isinstance(fmt, TextFormatJsonSchema):
            config["responseJsonSchema"] = fmt.schema
    reasoning = params.reasoning
    if reasoning is not None and (reasoning.effort is not None or reasoning.summary or reasoning.generate_summary):
        thinking: dict[str, Any] = {}
        if reasoning.effort is not None:
            thinking["thinkingBudget"] = THINKING_BUDGET[reasoning.effort]
        if (reasoning.summary or reasoning.generate_summary) and reasoning.effort != "none":
            thinking["includeThoughts"] = True
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    tools, choice = offered_tools(params)
    if web_search.wants_search(params.hosted_tools) is not None:
        body["tools"] = [{"google_search": {}}]
    if tools:
        body.setdefault("tools", []).append({"functionDeclarations": [_declaration(tool) for tool in tools]})
        calling: dict[str, Any] = {"mode": "ANY" if choice == "required" or isinstance(choice, NamedFunction) else "NONE" if choice == "none" else "AUTO"}
        if isinstance(choice, NamedFunction):
            calling["allowedFunctionNames"] = [choice.name]
        elif params.choice is not choice:  # allowed_tools narrowed the list
            calling["allowedFunctionNames"] = [tool.name for tool in tools]
        body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def _declaration(tool: Any) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.parameters:
        declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _contents(request: ModelRequest) -> tuple[list[str], list[dict[str, Any]]]:
    system = [request.settings.instructions] if request.settings.instructions else []
    contents: list[dict[str, Any]] = []
    names = {item.call_id: item.name for item in request.items if isinstance(item, FunctionCall)}
    signature: str | None = None  # a thought signature waiting for the next part of its model turn

    def add(role: str, part: dict[str, Any]) -> None:
        nonlocal signature
        if role == "model" and signature is not None:
            part = {**part, "thoughtSignature": signature}
            signature = None
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].append(part)
        else:
            contents.append({"role": role, "parts": [part]})

    def settle_signature() -> None:
        """A signature with no later part in its turn belongs to the turn's last part."""
        nonlocal signature
        if signature is not None and contents and contents[-1]["role"] == "model":
            contents[-1]["parts"][-1]["thoughtSignature"] = signature
        signature = None

    for item in request.items:
        if isinstance(item, HostedItem):
            continue  # another upstream's tool run: nothing Gemini can take
        if isinstance(item, Reasoning):
            sealed = unseal("gemini", item.encrypted_content if isinstance(item.encrypted_content, str) else None)
            if sealed:
                signature = sealed["signature"]
            continue
        if isinstance(item, FunctionCall):
            add("model", {"functionCall": {"name": item.name, "args": arguments(item.arguments)}})
            continue
        if isinstance(item, Message) and item.role == "assistant":
            text = spoken_text(item.content)
            add("model", {"text": text})
            continue
        settle_signature()
        if isinstance(item, FunctionCallOutput):
            add("user", {"functionResponse": {"name": names.get(item.call_id, item.call_id), "response": _response_object(message_text(item.output))}})
        elif item.role in ("system", "developer"):
            system.append(message_text(item.content))
        else:
            for part in item.content:
                add("user", _part(part))
    settle_signature()
    return system, contents


def _response_object(output: str) -> dict[str, Any]:
    """Gemini wants an object back from a function; JSON objects pass as they are."""
    try:
        value = orjson.loads(output)
    except orjson.JSONDecodeError:
        return {"output": output}
    return value if isinstance(value, dict) else {"output": value}


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, (InputText, OutputText)):
        return {"text": part.text}
    if isinstance(part, InputImage):
        if not isinstance(part.image_url, str):
            raise invalid("input", "Images must be sent by 'image_url' (a URL or a data URL) for this model.", "unsupported_value")
        inline = data_url(part.image_url)
        if inline:
            return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
        return {"fileData": {"mimeType": guess_type(part.image_url, "image/jpeg"), "fileUri": part.image_url}}
    if isinstance(part, InputFile):
        if isinstance(part.file_data, str):
            inline = data_url(part.file_data)
            if inline is None:
                raise invalid("input", "'file_data' must be a base64 data URL.")
            return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
        if isinstance(part.file_url, str):
            return {"fileData": {"mimeType": guess_type(part.file_url, "application/pdf"), "fileUri": part.file_url}}
        raise invalid("input", "Files must be sent as 'file_data' or 'file_url' for this model.", "unsupported_value")
    raise invalid("input", f"Content of type '{type(part).__name__}' cannot be sent to this model.", "unsupported_value")
