"""The engine: route a request, gather its context, check it, and start its model turn.

`Engine.start` does everything that can still fail as a plain HTTP error (unknown model,
unknown previous response, the upstream refusing the call) and returns a `Run` once the first
delta is in hand; only then does the API layer commit to a stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from rejoinder.engine.access import Principal
from rejoinder.engine.context import History, check_calls, check_sealed, compaction, earlier_items, exceeds, files, fit, model_view, resolve_input, validated
from rejoinder.engine.retrieval import Retrieval
from rejoinder.engine.router import Deployment, Router
from rejoinder.engine.run import Run, Turn
from rejoinder.engine.sinks import Sink
from rejoinder.engine.skeleton import skeleton
from rejoinder.engine.tools import TOOL, TOOL_NAME, Backend, file_search, mcp
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.items import Item
from rejoinder.protocol.request import Request, TextFormatJsonSchema
from rejoinder.protocol.tools import WEB_SEARCH_TOOL_TYPES, NamedFunction, Tools
from rejoinder.providers.base import Delta, Finish, HostedOutput, ModelRequest, Settings, Usage, added
from rejoinder.store.repository import Store

log = logging.getLogger("rejoinder.engine")


class Engine:
    def __init__(
        self,
        router: Router,
        store: Store,
        retrieval: Retrieval,
        create_missing_conversations: bool = False,
        search: Backend | None = None,
        mcp_access: mcp.McpAccess | None = None,
    ) -> None:
        self.router = router
        self.store = store
        self.retrieval = retrieval  # the project's vector stores, for `file_search`
        self.search = search  # the gateway's own web search, for providers that cannot search
        self.mcp_access = mcp_access or mcp.McpAccess([], [])  # MCP servers named in the config, and hosts past the guard
        self.history = History(store, create_missing_conversations)

    async def prepare(self, request: Request, principal: Principal, memory: Mapping[str, list[Item]] | None = None, running: bool = False) -> Turn:
        """Everything short of calling the model: the model (one `principal` may use), the
        context (from its project's stored objects), the checks. A background run is prepared
        when it is queued (its errors are the POST's) and again when it runs. `memory` holds the
        contexts of responses a WebSocket connection made, so a `previous_response_id` found
        there needs no read (and no storing). Only a turn `running` runs the MCP calls its input
        approves, and keeps its MCP sessions open (its `Run` releases them)."""
        params = request.body
        deployment = self.router.resolve(params.model, principal.allows)
        if not principal.allows(params.model):
            raise ApiError(403, f"This API key may not use the model '{params.model}'.", param="model", code="model_not_allowed")
        project = principal.project
        check_sealed(request.items)
        remembered = memory.get(params.previous_response_id) if memory is not None and params.previous_response_id else None
        if remembered is not None:
            earlier = remembered
        elif request.conversation is not None:
            earlier = await self.history.items(request.conversation, project)
        else:
            earlier = await earlier_items(self.store, params.previous_response_id, project)
        own_input = await resolve_input(self.store, request.items, project)
        context = earlier + own_input
        check_calls(own_input, context)
        tools = mcp.Prepared({}, [], [], [], mcp.Sessions(self.mcp_access.limits))
        seen = await files.inlined(self.store, context, project)  # what the model is shown of it (before `model_view`)
        if deployment.runs_mcp:
            seen = mcp.as_functions(seen)
            if any(tool.get("type") == "mcp" for _, tool in request.tools.hosted):
                tools = await mcp.prepare(request.tools, earlier, own_input, self.mcp_access, running)
        searched_files = None
        if request.tools.hosted and not deployment.file_search_upstream:
            searched_files = await _searching_files(request, project, self.retrieval)
        warnings = _without_hosted_tools(request.tools, deployment, self.search is not None) if request.tools.hosted else []
        streamed = bool(params.stream or params.background)  # a background run shows its output as it comes
        model_request = ModelRequest(settings(request), model_view(seen) + tools.answers, deployment.upstream_model, streamed)
        checkpoint = spent = None
        threshold = next((entry.compact_threshold for entry in params.context_management or () if entry.compact_threshold), None)
        if threshold is not None and await exceeds(deployment.provider, model_request, threshold):
            summary, spent = await compaction.summarize(deployment.provider, model_request)
            checkpoint = compaction.item(summary)
            model_request = msgspec.structs.replace(model_request, items=model_view([*seen, checkpoint]))
        model_request = await fit(deployment, model_request, params.truncation)
        return Turn(deployment, model_request, own_input, context, warnings, tools, checkpoint, spent, file_search=searched_files)

    async def compact(self, request: Request, principal: Principal) -> tuple[dict[str, Any], Deployment, Usage]:
        """What `POST /v1/responses/compact` answers for this context, the deployment that
        summarized it, and what that cost."""
        turn = await self.prepare(request, principal)
        summary, cost = await compaction.summarize(turn.deployment.provider, turn.model_request)
        return compaction.compacted_response(turn.context, summary, cost), turn.deployment, added(turn.spent, cost)  # type: ignore[return-value]

    async def input_tokens(self, request: Request, principal: Principal) -> int:
        """What `POST /v1/responses/input_tokens` answers: the turn as it would run, counted."""
        turn = await self.prepare(request, principal)
        return await turn.deployment.provider.count_tokens(turn.model_request)

    async def start(
        self,
        request: Request,
        principal: Principal,
        sink: Sink,
        memory: Mapping[str, list[Item]] | None = None,
        generate: bool = True,
    ) -> Run:
        """Call the model; a `Run` once its first delta is in hand, its events and end to go to
        `sink` (which holds the response it continues, for a background run). With `generate`
        false the model is not called: the response ends at once with no output, its input kept
        as context for a later turn (WebSocket mode's warm-up)."""
        params = request.body
        turn = await self.prepare(request, principal, memory, running=True)
        response = sink.response if sink.response is not None else skeleton(request)
        called = time.monotonic()
        try:
            turn, batches, first = await self._first(turn, params, generate)
            if turn.checkpoint is not None:  # compacted first: the summary is the output's first item
                first = [HostedOutput(turn.checkpoint), *first]
            # MCP servers listed for this turn, and the calls this request approved, before the model's output
            first = [
                *(d for item in turn.mcp_tools.listed for d in mcp.listing(item)),
                *(d for item in turn.mcp_tools.ran for d in mcp.ran_deltas(item)),
                *first,
            ]
        except BaseException:
            turn.mcp_tools.sessions.release()
            raise
        search = self.search if request.tools.searched else None
        return Run(self.store, request, principal, response, turn, first, batches, sink, (called, time.monotonic()), search)

    async def _first(self, turn: Turn, params: Any, generate: bool) -> tuple[Turn, AsyncIterator[list[Delta]], list[Delta]]:
        """The upstream's first batch, from the first candidate deployment that gives one: an
        upstream 429 (which cools that deployment), 5xx or connect failure tries the next, so
        nothing has reached the client yet. The turn comes back with the deployment that served."""
        if not generate:
            batches = aiter(_unanswered())
            return turn, batches, await anext(batches)
        fmt = params.text.format if params.text is not None else None
        candidates = self.router.candidates(params.model, params.prompt_cache_key)
        for attempt, deployment in enumerate(candidates):
            model_request = turn.model_request
            if deployment.upstream_model != model_request.upstream_model:
                model_request = msgspec.structs.replace(model_request, upstream_model=deployment.upstream_model)
            if params.retries and isinstance(fmt, TextFormatJsonSchema):
                batches = aiter(validated(deployment.provider, model_request, fmt.schema, params.retries))
            else:
                batches = aiter(deployment.provider.stream(model_request))
            try:
                return turn._replace(deployment=deployment, model_request=model_request, retries=attempt), batches, await anext(batches)
            except BaseException as exc:
                await batches.aclose()
                if isinstance(exc, StopAsyncIteration):
                    raise ApiError(502, "The upstream model provider returned nothing.", type="server_error", code="upstream_error") from None
                if not isinstance(exc, ApiError):
                    raise
                if exc.status == 429:
                    self.router.cool(deployment, _retry_after(exc))
                if attempt == len(candidates) - 1 or not (exc.status == 429 or (exc.code or "").startswith("upstream_")):
                    raise
                log.warning("%s: deployment %d of %d failed (%s), trying the next", params.model, attempt + 1, len(candidates), exc.code)


async def _unanswered() -> AsyncIterator[list[Delta]]:
    yield [Finish("stop", Usage(calls=0))]


def settings(request: Request) -> Settings:
    """What this turn asks of the model, as every provider reads it."""
    body, tools = request.body, request.tools
    return Settings(
        **{name: getattr(body, name) for name in _SETTINGS_FROM_BODY},
        include=list(body.include or ()),
        function_tools=tools.functions,
        choice=tools.choice,
        hosted_tools=[tool for _, tool in tools.hosted],
    )


_SETTINGS_FROM_BODY = tuple(name for name in Settings.__struct_fields__ if name not in ("include", "function_tools", "choice", "hosted_tools"))


def _without_hosted_tools(tools: Tools, deployment: Deployment, searches: bool) -> list[str]:
    """Hosted tools on a provider that cannot run them: web search is run by the gateway when it
    `searches` (a backend is configured); any other is refused (a 400) or, by the model's
    `hosted_tools` policy (default: drop web search, refuse the rest), left out of the model's
    view; what was left out, as warnings for the client and the log."""
    warnings = []
    runs = deployment.provider.hosted_tool_types
    forced = tools.choice["type"] if isinstance(tools.choice, dict) else None  # a hosted tool the model must use
    for index, tool in tools.hosted:
        if tool["type"] in runs:
            continue
        own = searches and tool["type"] in WEB_SEARCH_TOOL_TYPES and forced in (None, *WEB_SEARCH_TOOL_TYPES)
        if own and (tools.searched or all(function.name != TOOL_NAME for function in tools.functions)):
            if not tools.searched:
                tools.functions, tools.searched = [*tools.functions, TOOL], True
            if forced is not None:  # a forced search: the gateway's search function, called once
                tools.choice = NamedFunction(TOOL_NAME)
            continue
        policy = deployment.hosted_tools or ("drop" if tool["type"] in WEB_SEARCH_TOOL_TYPES else "refuse")
        if policy == "refuse" or isinstance(tools.choice, dict):  # a forced hosted tool cannot be dropped
            raise invalid(
                f"tools[{index}].type",
                f"Tool type '{tool['type']}' runs on the upstream's side, and this model's provider cannot run it (or set the model's hosted_tools: drop).",
                "unsupported_value",
            )
        warnings.append(f"tools[{index}] ({tool['type']}) was left out: this model's provider cannot run it")
    tools.hosted = [(index, tool) for index, tool in tools.hosted if tool["type"] in runs]
    if warnings:
        log.info("%s: %s", deployment.name, "; ".join(warnings))
    return warnings


async def _searching_files(request: Request, project: str, retrieval: Retrieval) -> file_search.FileSearch | None:
    """A `file_search` tool the gateway runs: taken from the hosted tools, offered to the model
    as the `file_search` function (forced, if `tool_choice` forces it); its settings, checked
    (a vector store the project does not hold is a 404 now, not a failed search later)."""
    tools = request.tools
    found = [(index, tool) for index, tool in tools.hosted if tool["type"] == "file_search"]
    if not found:
        return None
    if len(found) > 1:
        raise invalid(f"tools[{found[1][0]}]", "At most one file_search tool: give it every vector store to search.")
    index, tool = found[0]
    spec = file_search.prepared(tool, index, project, retrieval, list(request.body.include or ()))
    await retrieval.require(project, spec.store_ids, f"tools[{index}].vector_store_ids")
    tools.hosted = [(i, hosted) for i, hosted in tools.hosted if i != index]
    tools.functions = [*tools.functions, file_search.TOOL]
    if isinstance(tools.choice, dict) and tools.choice.get("type") == "file_search":
        tools.choice = NamedFunction(file_search.TOOL_NAME)
    return spec


def _retry_after(exc: ApiError) -> float:
    """How long an upstream 429 asked to wait (a minute when it did not say)."""
    try:
        return max(1.0, float(exc.headers.get("Retry-After", 60)))
    except ValueError:
        return 60.0
