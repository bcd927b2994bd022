"""One response's model turn, driven to its end: build, keep, then the terminal event.

`Engine.start` (see `engine.engine`) hands a `Run` over once the upstream's first delta is in
hand; `Run.finish` drives the rest and hands what it makes to the run's `Sink` (`engine.sinks`):
a client waiting for JSON, a client's stream, or a background run's log. Each concern has its
place: generating (`_generate`, with the tool rounds of `engine.tools.rounds` in `_apply`), steering
(`interject`, `_steered`), keeping the end (`Ending`, the sink's `keep`), a
conversation's new items (`conversation_append`) and a client gone (`_keep_cancelled`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

from rejoinder.engine import lifecycle
from rejoinder.engine.access import Principal
from rejoinder.engine.builder import Builder
from rejoinder.engine.context import estimated_usage
from rejoinder.engine.lifecycle import Sequence
from rejoinder.engine.router import Deployment
from rejoinder.engine.sinks import Sink
from rejoinder.engine.tools import Backend, Round, mcp
from rejoinder.engine.tools.file_search import FileSearch
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.items import Compaction, Item, encode_item
from rejoinder.protocol.request import Request
from rejoinder.protocol.response import Response, encode
from rejoinder.providers.base import Delta, Finish, ModelRequest, Usage
from rejoinder.providers.web_search import Searches
from rejoinder.store import conversations
from rejoinder.store.repository import Store
from rejoinder.store.schema import ItemRow

log = logging.getLogger("rejoinder.engine")


class Turn(NamedTuple):
    """A model turn, prepared (`Engine.prepare`): everything short of calling the model."""

    deployment: Deployment
    model_request: ModelRequest
    own_input: list[Item]
    context: list[Item]  # what the model sees, before `model_view`: the earlier chain, then own_input
    warnings: list[str]
    mcp_tools: mcp.Prepared  # MCP tools offered and listed, approved calls run, their sessions (see `engine.tools.mcp.client`)
    checkpoint: Compaction | None = None  # the compaction item `context_management` made of the context
    spent: Usage | None = None  # what making it cost
    retries: int = 0  # deployments that failed before the one that served
    file_search: FileSearch | None = None  # a file_search tool the gateway runs (see `engine.tools.file_search`)


class Ending:
    """A run's end, ready for its sink to keep: its final form, its item rows, what it adds to
    a conversation, and the events not sent yet."""

    __slots__ = ("run", "builder", "response", "encoded", "rows", "also", "events", "failure")

    def __init__(self, run: Run, builder: Builder | None, events: list[tuple[str, bytes]]) -> None:
        self.run = run
        self.builder = builder
        self.response = run.response
        self.encoded = encode(run.response)
        self.rows = run.item_rows()
        self.also = run.conversation_append(self.rows)
        self.events = events
        self.failure: ApiError | None = None

    def fail(self, error: ApiError) -> None:
        """Keeping it failed: the response ends failed instead."""
        self.failure = error
        self.builder.fail(error)  # type: ignore[union-attr]
        self.encoded = encode(self.response)

    def close(self) -> None:
        """Build the event that closes the stream."""
        self.builder.terminal()  # type: ignore[union-attr]

    async def save(self) -> None:
        """Store the final form (when `store`) and a conversation's new items, committed
        together; a store that fails ends the response failed."""
        run = self.run
        if not (run.params.store or self.also is not None):
            return
        try:
            if run.params.store:
                await run.store.save(self.response, self.encoded, run.principal.tenant, self.rows, run.begun, self.also)
            else:
                await run.store.write(self.also)  # type: ignore[arg-type]
        except Exception:
            self.fail(ApiError(500, "The response could not be stored.", type="server_error", code="server_error"))

    async def save_cancelled(self) -> None:
        run = self.run
        await run.store.save(self.response, self.encoded, run.principal.tenant, self.rows, run.begun)


class Run:
    def __init__(
        self,
        store: Store,
        request: Request,
        principal: Principal,
        response: Response,
        turn: Turn,
        first: list[Delta],
        rest: AsyncIterator[list[Delta]],
        sink: Sink,
        timing: tuple[float, float] = (0.0, 0.0),
        search: Backend | None = None,
    ) -> None:
        self.store = store
        self.principal = principal  # whose it is: its project owns what it stores
        self.params = request.body
        self.tools = request.tools
        self.conversation = request.conversation
        self.response = response
        self.sink = sink
        # A client's stream of a stored response shows its id with its first events: recorded
        # as in progress before them, so that even a crash leaves the id readable (see
        # `store.liveness`). One whose first read holds the whole answer is never in progress.
        self.records_progress = bool(self.params.store and sink.streams and sink.response is None)
        self.begun = False  # the in-progress record was written
        self.ended = False  # a final form was built (and kept, if asked)
        self.deployment = turn.deployment  # the one that served (see `Engine._first`)
        self.retries = turn.retries
        self.called_at, self.first_at = timing  # monotonic: the upstream call began, its first delta came
        self.own_input = turn.own_input
        self.context = turn.context
        self.model_request = turn.model_request
        self.spent = turn.spent  # upstream calls made before the turn's own (a compaction's summary)
        self.first = first
        self.rest = rest
        self.warnings = turn.warnings  # for the client, in `x-rejoinder-warning`
        self.pending: list[tuple[str, bytes]] = []  # events built, not yet sent
        self.steerable = False  # between the first flush and the upstream's end (see `interject`)
        self.interjections: list[tuple[str, dict[str, Any]]] = []
        # tools the gateway runs (web search, MCP; see `engine.tools.rounds`), answered by more model turns
        self.round = None
        if search is not None or turn.mcp_tools.offered or turn.file_search is not None:
            searches = Searches(list(self.params.include or ()))
            self.round = Round(searches, search, turn.mcp_tools, self.params.max_tool_calls, turn.model_request, turn.file_search)
        self.sessions = turn.mcp_tools.sessions

    @property
    def used(self) -> Usage | None:
        """Every upstream call's usage, once the response ended (see `Builder.spend`)."""
        return self.sink.builder.used if self.sink.builder is not None else None

    @property
    def events(self) -> Sequence:
        """The numbers of the response's events (steering's follow the run's)."""
        return self.sink.sequence

    async def finish(self) -> bytes:
        """Drive the model turn to its end, keep the response, then emit the terminal event.
        Returns the final Response as JSON. For a client waiting for JSON a failure is raised as
        the HTTP error; on a stream it becomes `error` + `response.failed`."""
        include = self.params.include or ()
        pending = self.pending  # not `self`: the builder, held by the sink, would close a reference cycle
        emit = (lambda event: pending.append((event["type"], encode(event)))) if self.sink.streams else None
        builder = Builder(
            self.response, emit, "message.output_text.logprobs" in include, "reasoning.encrypted_content" in include, self.tools, self.sink.sequence
        )
        self.sink.builder = builder
        builder.spend(self.spent)
        failure = await self._generate(builder)
        self.ended = True
        if failure is not None:
            builder.fail(failure)
        ending = Ending(self, builder, self.pending)
        await self.sink.keep(ending)
        if self.sink.streams:
            await self._flush(last=True)
        elif failure or ending.failure:
            raise failure or ending.failure  # type: ignore[misc]
        return ending.encoded

    async def _flush(self, last: bool = False) -> None:
        if self.pending or last:
            await self.sink.send(self.pending, last)
            self.pending.clear()

    async def _generate(self, builder: Builder) -> ApiError | None:
        """The model's turns, up to the response's end; the failure that ended it, if one did.
        When the upstream's first read already holds the whole answer (and calls no tool the
        gateway runs), nothing is shown before the final form is kept; otherwise the in-progress
        record is durable before the first flush, so an id a client has seen always reads back."""
        whole = isinstance(self.first[-1], Finish)
        try:
            builder.begin(queued=self.sink.response is not None)
            searched = await self._apply(builder, self.first)
            if not whole or searched:
                if self.records_progress:
                    await self._record_in_progress()
                self.steerable = True
                await self._flush()
                await self._stream_rest(builder)
            self.steerable = False
            self._steered(builder)
        except ApiError as exc:
            return exc
        except (asyncio.CancelledError, ConnectionError):
            await self._keep_cancelled(builder)
            raise
        except Exception:
            log.exception("response %s failed inside the gateway", self.response.id)
            return ApiError(500, "The gateway failed while generating the response.", type="server_error", code="server_error")
        finally:
            self.steerable = False
            await self.close()
        return None

    async def _record_in_progress(self) -> None:
        """Commit the response as it stands, in progress and owned by this instance; a failure
        is logged, and the stream goes on (its final form is saved as a whole)."""
        try:
            await self.store.begin(self.response, encode(self.response), self.principal.tenant)
            self.begun = True
        except Exception as exc:
            log.warning("could not record response %s as in progress: %s", self.response.id, type(exc).__name__)

    async def _stream_rest(self, builder: Builder) -> None:
        """The upstream's later batches, sent as they come; a turn that ends in calls of tools
        the gateway runs is answered, and the model's next turn streamed on. Steering input
        stops it at the next batch."""
        while True:
            searched = False
            async for batch in self.rest:
                searched = await self._apply(builder, batch)
                if searched or self.interjections:
                    break
                await self._flush()
            if not searched:
                return
            await self._flush()  # the searches' results, then the next model turn

    async def _apply(self, builder: Builder, batch: list[Delta]) -> bool:
        """Apply an upstream batch. A turn that ends in calls of tools the gateway runs is
        answered instead of ending the response: True, and `rest` is the next turn's stream."""
        for delta in batch:
            if self.round is None:
                builder.apply(delta)
                continue
            if isinstance(delta, Finish):
                for closed in self.round.close():
                    builder.apply(closed)
                if self.round.goes_on():
                    await self._next_turn(builder, delta)
                    return True
                for last in await self.round.last():
                    builder.apply(last)
            for shown in self.round.filter(delta):
                builder.apply(shown)
        return False

    async def _next_turn(self, builder: Builder, finish: Finish) -> None:
        """Run the turn's calls of gateway-run tools, then call the model again with their results."""
        builder.spend(finish.usage)
        deltas, answers = await self.round.answer()  # type: ignore[union-attr]
        for delta in deltas:
            builder.apply(delta)
        request = self.round.next_request(builder.output, answers)  # type: ignore[union-attr]
        await self.rest.aclose()
        self.rest = aiter(self.deployment.provider.stream(request))

    def interject(self, type_: str, fields: dict[str, Any]) -> bool:
        """Steering (WebSocket mode): emit this event in the run's own order, then end the run
        at its next upstream batch as incomplete (`steered`), or as it ends if that comes first.
        False when the run is past that point (its client announces the event itself)."""
        if not self.steerable:
            return False
        self.interjections.append((type_, fields))
        return True

    def _steered(self, builder: Builder) -> None:
        """Steering input that came while the run went on: its events, in the run's order, and
        the run ends steered (unless it had ended already)."""
        for type_, fields in self.interjections:
            builder.announce(type_, fields)
        if self.interjections and self.response.status == "in_progress":
            request = self.round.model_request if self.round is not None else self.model_request
            builder.steered(estimated_usage(request, builder.output))

    async def release(self) -> None:
        """The transport is done with this run: release the upstream, and if the run never
        ended (its client left before the stream began), keep it as cancelled."""
        if self.ended:
            await self.close()
        else:
            await self._keep_cancelled(None)

    async def _keep_cancelled(self, builder: Builder | None) -> None:
        """The client went away mid-stream: stop the upstream, and keep what was generated as a
        `cancelled` response rather than lose it."""
        self.ended = True
        await self.close()
        if not self.params.store:
            return
        if builder is not None:
            builder.cancel()
        else:
            lifecycle.end(self.response, "cancelled")
        try:
            await asyncio.shield(self.sink.keep_cancelled(Ending(self, builder, [])))
        except Exception:
            log.warning("could not store cancelled response %s", self.response.id)

    def conversation_append(self, rows: list[ItemRow]) -> Callable[[Any], bool] | None:
        """What a turn on a conversation adds to it, committed with its final form: its input
        and output items, in order, when it completed or stopped incomplete; nothing else. With
        `store: false` the items still go to the conversation (the client asked for it to be
        kept), the response itself does not."""
        if self.conversation is None or self.response.status not in ("completed", "incomplete"):
            return None
        return functools.partial(
            conversations.append, conversation_id=self.conversation, project=self.principal.project, rows=[(row.id, row.body) for row in rows]
        )

    async def close(self) -> None:
        """Release the upstream call and the MCP sessions; safe to repeat."""
        await self.rest.aclose()
        self.sessions.release()

    def item_rows(self) -> list[ItemRow]:
        response_id = self.response.id
        rows = [ItemRow(response_id, "input", i, item.id, encode_item(item)) for i, item in enumerate(self.own_input)]
        return rows + [ItemRow(response_id, "output", i, item.id, encode(item)) for i, item in enumerate(self.response.output)]
