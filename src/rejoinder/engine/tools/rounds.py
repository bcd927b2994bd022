"""A model turn's calls of tools the gateway runs itself: web search (`engine.tools.searching`),
file search (`engine.tools.file_search`) and MCP tools (`engine.tools.mcp.client`), offered to
the model as functions.

Their calls never reach the client as function calls. `Round.filter` turns the provider's
tool-call deltas into the items OpenAI shows (`web_search_call`, `file_search_call`, `mcp_call`, with their events);
when the turn ends, `Round.answer` runs them all at once and gives back the deltas that end
their items and the function calls and outputs the model's next turn sees; `Round.next_request`
is that turn, which `Run` streams in the same response, up to `MAX_ROUNDS` turns (the builder
adds up every turn's usage).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec

from rejoinder.engine.context import model_view
from rejoinder.engine.tools import file_search, mcp, searching
from rejoinder.engine.tools.file_search import FileSearch
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import FunctionCall, FunctionCallOutput
from rejoinder.protocol.tools import relaxed
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, HostedEvent, HostedOutput, HostedStart, ModelRequest
from rejoinder.providers.web_search import Searches, query_of

MAX_ROUNDS = 5  # model turns that may call gateway-run tools within one response
# items of a turn its next turn sees only as the function calls and outputs `Round.answer` gives
SHOWN_AS_CALLS = frozenset(("web_search_call", "file_search_call", "mcp_call", "mcp_list_tools", "mcp_approval_request"))
_UNRUN = "max_tool_calls reached: not run."  # a call past `max_tool_calls`


class _Call:
    __slots__ = ("name", "call_id", "item", "chunks")

    def __init__(self, name: str, call_id: str, item: dict[str, Any] | None) -> None:
        self.name = name
        self.call_id = call_id
        self.item = item  # an MCP call's or a file search's item; None for a web search (its item is `Searches`')
        self.chunks: list[str] = []


class Round:
    def __init__(
        self,
        searches: Searches,
        backend: searching.Backend | None,
        tools: mcp.Prepared,
        budget: int | None,
        request: ModelRequest,
        files: FileSearch | None = None,
    ) -> None:
        self.searches = searches
        self.files = files  # the request's file_search tool, run by the gateway
        self.cited: dict[str, str] = {}  # files the searches found (id → name): cited on the answer's text
        self.text: list[Any] | None = None  # the text block being written after a file search, and its length so far
        self.sessions = tools.sessions  # one per MCP server, for the whole response
        self.budget = budget  # calls the response may still run (`max_tool_calls`); None: no bound
        self.backend = backend
        self.offered = tools.offered
        self.open: dict[str, _Call] = {}  # block → call
        self.ended: list[_Call] = []
        self.asked = False  # a call waits for the client's approval: the response ends with the request
        self.deadline = asyncio.get_running_loop().time() + self.sessions.limits.response_time  # for all of the response's MCP calls
        self.model_request = request  # the last turn's: the next extends it
        self.rounds = 0  # turns whose calls were answered by another
        self.turn_start = 0  # where the last turn's output begins

    def filter(self, delta: Delta) -> list[Delta]:
        """What the builder sees of a delta: a gateway-run call's pieces become its item's progress."""
        if isinstance(delta, BlockStart) and delta.kind == "tool_call":
            if delta.name == searching.TOOL_NAME and self.backend is not None:
                self.open[delta.block] = _Call(delta.name, delta.call_id, None)
                return self.searches.start(delta.call_id)
            if delta.name == file_search.TOOL_NAME and self.files is not None:
                item = file_search.new_item()
                self.open[delta.block] = _Call(delta.name, delta.call_id, item)
                return file_search.started(item)
            offered = self.offered.get(delta.name)
            if offered is not None and offered.approval:  # it waits for the client: the response ends asking
                item = {"id": new_id("mcpr"), "type": "mcp_approval_request", "server_label": offered.server.label, "name": offered.tool, "arguments": ""}
                self.open[delta.block] = _Call(delta.name, delta.call_id, item)
                return [HostedStart(dict(item))]
            if offered is not None:
                item = {"id": new_id("mcp"), "type": "mcp_call", "server_label": offered.server.label, "name": offered.tool, "arguments": ""}
                item["status"] = "in_progress"
                self.open[delta.block] = _Call(delta.name, delta.call_id, item)
                return [HostedStart(dict(item)), HostedEvent("response.mcp_call.in_progress", item["id"], {})]
        call = self.open.get(getattr(delta, "block", ""))
        if call is None:
            return self._cite(delta) if self.cited else [delta]
        if isinstance(delta, BlockDelta):
            call.chunks.append(delta.text)
            shown = call.item is not None and call.item["type"] == "mcp_call"
            return [HostedEvent("response.mcp_call_arguments.delta", call.item["id"], {"delta": delta.text})] if shown else []
        if isinstance(delta, BlockEnd):
            return self._end(delta.block)
        return [delta]

    def _cite(self, delta: Delta) -> list[Delta]:
        """After a file search: the answer's text block ends with the files it found, cited."""
        if isinstance(delta, BlockStart) and delta.kind == "text":
            self.text = [delta.block, 0]
        elif self.text is not None and getattr(delta, "block", None) == self.text[0]:
            if isinstance(delta, BlockDelta):
                self.text[1] += len(delta.text)
            elif isinstance(delta, BlockEnd):
                return [*self._citations(), delta]
        return [delta]

    def _citations(self) -> list[Delta]:
        """The files found, cited at the end of the text block being written (none when there is none)."""
        if self.text is None:
            return []
        block, length = self.text
        self.text = None
        return file_search.citations(block, length, self.cited)

    def _end(self, block: str) -> list[Delta]:
        call = self.open.pop(block)
        if call.item is not None and call.item["type"] == "mcp_approval_request":
            self.asked = True
            return [HostedOutput({**call.item, "arguments": "".join(call.chunks)})]
        self.ended.append(call)
        if call.item is None or call.item["type"] == "file_search_call":
            return []
        call.item["arguments"] = "".join(call.chunks)
        return [HostedEvent("response.mcp_call_arguments.done", call.item["id"], {"arguments": call.item["arguments"]})]

    def close(self) -> list[Delta]:
        """The turn has ended: the calls a provider left open end too, and an answer's text
        that a provider leaves for the end of the response to close gets its citations."""
        return [delta for block in list(self.open) for delta in self._end(block)] + self._citations()

    def exhausted(self) -> bool:
        return self.budget is not None and self.budget <= 0

    def goes_on(self) -> bool:
        """The turn's calls are answered by another turn of the model: it made some, and is not
        past `MAX_ROUNDS` or `max_tool_calls`, nor waiting for an approval."""
        return bool(self.ended) and self.rounds < MAX_ROUNDS and not self.asked and not self.exhausted()

    async def last(self) -> list[Delta]:
        """The response ends: the calls that ran are answered (with an approval pending), or
        given up (past a limit)."""
        return (await self.answer())[0] if self.asked else self.give_up()

    def next_request(self, output: list[Any], answers: list[Any]) -> ModelRequest:
        """The model's next turn: what it said in the last (its gateway-run calls only as the
        function calls and outputs `answers` holds), then those."""
        said = [item for item in output[self.turn_start :] if item.type not in SHOWN_AS_CALLS]
        settings = msgspec.structs.replace(self.model_request.settings, choice=relaxed(self.model_request.settings.choice))  # a forced call was made
        self.model_request = msgspec.structs.replace(self.model_request, settings=settings, items=[*self.model_request.items, *model_view(said), *answers])
        self.turn_start = len(output)
        self.rounds += 1
        return self.model_request

    def give_up(self) -> list[Delta]:
        """The calls of a turn past `MAX_ROUNDS` or `max_tool_calls`: ended as failed, unrun."""
        why = mcp.protocol_error(_UNRUN if self.exhausted() else "Too many tool rounds in one response.")
        deltas = [delta for call in self.ended for delta in self._ended(call, None, why)]
        self.ended = []
        return deltas

    async def answer(self) -> tuple[list[Delta], list[Any]]:
        """Run every ended call at once (as many as `max_tool_calls` leaves; the others fail
        unrun): the deltas that end their items, and the items (each call and its output) the
        model's next turn adds."""
        runnable = len(self.ended) if self.budget is None else max(0, min(self.budget, len(self.ended)))
        if self.budget is not None:
            self.budget -= runnable
        unrun = (None, mcp.protocol_error(_UNRUN), [])
        outcomes = [*await asyncio.gather(*(self._run(call) for call in self.ended[:runnable])), *[unrun] * (len(self.ended) - runnable)]
        deltas: list[Delta] = []
        items: list[Any] = []
        for call, (output, error, found) in zip(self.ended, outcomes, strict=True):
            deltas += self._ended(call, output, error, found)
            arguments = "".join(call.chunks) or "{}"
            items += [FunctionCall(call.call_id, call.name, arguments), FunctionCallOutput(call.call_id, mcp.told(output, error))]
        self.ended = []
        return deltas, items

    async def _run(self, call: _Call) -> tuple[str | None, Any, list[str]]:
        """Its output (None when it failed), its error, and what a search found (URLs, or a
        file search's results)."""
        arguments = "".join(call.chunks)
        if call.item is not None and call.item["type"] == "file_search_call":
            return await file_search.run(self.files, file_search.queries_of(arguments))  # type: ignore[arg-type]
        if call.item is None:
            results = await searching.search(self.backend, query_of(arguments))  # type: ignore[arg-type]
            if results is None:
                return None, "The search failed.", []
            text = "\n\n".join(f"{r.title}\n{r.url}\n{r.snippet}" for r in results) or "No results."
            return text, None, [r.url for r in results]
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0.01:  # spent (asyncio may wake the previous call's timeout a hair early)
            return None, mcp.protocol_error(f"This response's MCP calls took their {self.sessions.limits.response_time:g} s: not run."), []
        output, error = await mcp.call(self.offered[call.name], arguments, self.sessions, min(self.sessions.limits.call_timeout, left))
        return output, error, []

    def _ended(self, call: _Call, output: str | None, error: Any, found: Sequence[Any] = ()) -> list[Delta]:
        if call.item is not None and call.item["type"] == "file_search_call":
            self.cited.update((result["file_id"], result["filename"]) for result in found)
            queries = file_search.queries_of("".join(call.chunks))
            return file_search.ended(call.item, queries, list(found), output is None, self.files.with_results)  # type: ignore[union-attr]
        if call.item is None:
            query = query_of("".join(call.chunks))
            return self.searches.end(call.call_id, [query] if query else [], list(found), failed=output is None)
        item = {**call.item, "status": "failed" if output is None else "completed", "output": output, "error": error}
        return [HostedEvent(f"response.mcp_call.{item['status']}", item["id"], {}), HostedOutput(item)]
