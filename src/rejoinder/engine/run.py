"""One response's model turn, driven to its end: build, store, then the terminal event.

`Engine.start` (see `engine.engine`) hands a `Run` over once the upstream's first delta is in
hand; `Run.finish` drives the rest, to a client's stream (a `Sink`), a background run's
`Journal`, or nowhere (a non-streaming request).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import orjson

from rejoinder.engine.access import Principal
from rejoinder.engine.builder import Builder
from rejoinder.engine.rounds import Round, summed
from rejoinder.engine.searching import Backend
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.items import encode_item
from rejoinder.protocol.request import Request
from rejoinder.providers.base import Delta, Finish
from rejoinder.providers.web_search import Searches
from rejoinder.store import conversations
from rejoinder.store.repository import Store

if TYPE_CHECKING:
    from rejoinder.engine.engine import Turn

log = logging.getLogger("rejoinder.engine")

Sink = Callable[[list[tuple[str, bytes]], bool], Awaitable[None]]
"""Receives `(event type, event JSON)` pairs, serialized the moment each event happened, and
whether they are the last (so the transport can finish in the same write)."""


def encode(value: Any) -> bytes:
    """JSON for what the gateway emits and stores. orjson is fast but refuses integers beyond
    64 bits and very deep nesting; anything an upstream sent (msgspec decoded it) msgspec can
    encode back, so an odd upstream value never breaks a stream after it started."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return msgspec.json.encode(value)


class Journal(Protocol):
    """Where a background run's events and final form go (see `engine.background`)."""

    response: dict[str, Any]
    sequence: int  # the number of the run's next event
    builder: Builder | None  # the run's, to bring its snapshot up to date

    async def sink(self, events: list[tuple[str, bytes]], last: bool) -> None: ...

    async def finish(
        self, encoded: bytes, item_rows: list[dict[str, Any]], events: list[tuple[str, bytes]], also: Callable[[Any], Any] | None = None
    ) -> None: ...


async def settled(future: asyncio.Future) -> None:
    """Wait until a store write the request did not wait for is committed or has failed (the
    failure is logged once, by `_log_if_failed`; the final save reports its own)."""
    try:
        await future
    except Exception:
        pass


class Run:
    def __init__(
        self,
        store: Store,
        request: Request,
        principal: Principal,
        response: dict[str, Any],
        begun: asyncio.Future | None,
        turn: Turn,
        first: list[Delta],
        rest: AsyncIterator[list[Delta]],
        journal: Journal | None = None,
        timing: tuple[float, float] = (0.0, 0.0),
        search: Backend | None = None,
    ) -> None:
        self.store = store
        self.principal = principal  # whose it is: its project owns what it stores
        self.params = request.body
        self.tools = request.tools
        self.conversation = request.conversation
        self.response = response
        self.begun = begun  # the in-progress record's write, when there is one
        self.ended = False  # a final form was built (and stored, if `store`)
        self.deployment = turn.deployment  # the one that served (see `Engine._first`)
        self.retries = turn.retries
        self.called_at, self.first_at = timing  # monotonic: the upstream call began, its first delta came
        self.own_input = turn.own_input
        self.context = turn.context
        self.first = first
        self.rest = rest
        self.warnings = turn.warnings  # for the client, in `x-rejoinder-warning`
        self.journal = journal  # a background run's: its events and final form go there
        self.steerable = False  # between the first flush and the upstream's end (see `interject`)
        self.interjections: list[tuple[str, dict[str, Any]]] = []
        self.sequence = 0  # the number its next event would take, once it has finished
        # tools the gateway runs (web search, MCP; see `engine.rounds`), answered by more model turns
        self.round = None
        if search is not None or turn.mcp_tools.offered:
            searches = Searches(list(self.params.include or ()))
            self.round = Round(searches, search, turn.mcp_tools, self.params.max_tool_calls, turn.model_request)
        self.sessions = turn.mcp_tools.sessions

    async def finish(self, sink: Sink | None) -> bytes:
        """Drive the model turn to its end, store the response, then emit the terminal event.
        Returns the final Response as JSON.

        With no `sink` (non-streaming) a failure is raised as the HTTP error; with one, it
        becomes `error` + `response.failed`.
        """
        pending: list[tuple[str, bytes]] = []
        if self.journal is not None:
            sink = self.journal.sink

        def emit(event: dict[str, Any]) -> None:
            pending.append((event["type"], encode(event)))

        include = self.params.include or ()
        builder = Builder(
            self.response,
            emit if sink else None,
            "message.output_text.logprobs" in include,
            "reasoning.encrypted_content" in include,
            self.tools,
            self.journal.sequence if self.journal is not None else 0,
        )
        failure: ApiError | None = None
        if self.journal is not None:
            self.journal.builder = builder  # see `Journal.sink`

        async def flush(last: bool = False) -> None:
            if pending or last:
                await sink(pending, last)  # type: ignore[misc]
                pending.clear()

        # When the upstream's first read already holds the whole answer (and calls no tool the
        # gateway runs), nothing is shown before the final form is stored; otherwise the
        # in-progress record is durable before the first flush, so an id a client has seen
        # always reads back (see `Engine.start`).
        whole = isinstance(self.first[-1], Finish)
        try:
            builder.begin(queued=self.journal is not None)
            searched = await self._apply(builder, self.first)
            if not whole or searched:
                if self.begun is not None:
                    await settled(self.begun)
                self.steerable = True
                await flush()
                while True:
                    searched = False
                    async for batch in self.rest:
                        searched = await self._apply(builder, batch)
                        if searched or self.interjections:
                            break
                        await flush()
                    if not searched:
                        break
                    await flush()  # the searches' results, then the next model turn
            self.steerable = False
            for type_, fields in self.interjections:
                builder.announce(type_, fields)
            if self.interjections and self.response["status"] == "in_progress":
                builder.steered()
        except ApiError as exc:
            failure = exc
        except (asyncio.CancelledError, ConnectionError):
            await self._keep_cancelled(builder)
            raise
        except Exception:
            log.exception("response %s failed inside the gateway", self.response["id"])
            failure = ApiError(500, "The gateway failed while generating the response.", type="server_error", code="server_error")
        finally:
            self.steerable = False
            await self.close()
        self.ended = True
        if failure is not None:
            builder.fail(failure)
        encoded = encode(self.response)
        rows = self._item_rows()
        also = self._conversation_append(rows)
        if self.journal is not None:  # the final form and the last events commit together
            builder.terminal()
            await self.journal.finish(encoded, rows, pending, also)
            return encoded
        if self.params.store or also is not None:
            try:
                await (
                    self.store.save(self.response, encoded, self.principal.tenant, rows, self.begun is not None, also)
                    if self.params.store
                    else self.store.write(also)
                )
            except Exception:
                failure = ApiError(500, "The response could not be stored.", type="server_error", code="server_error")
                builder.fail(failure)
                encoded = encode(self.response)
        builder.terminal()
        self.sequence = builder.sequence
        if sink is not None:
            await flush(last=True)
        if failure is not None and sink is None:
            raise failure
        return encoded

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
                delta = summed(delta, self.round.spent)  # the response's usage: every turn's
            for shown in self.round.filter(delta):
                builder.apply(shown)
        return False

    async def _next_turn(self, builder: Builder, finish: Finish) -> None:
        """Run the turn's calls of gateway-run tools, then call the model again with their results."""
        deltas, answers = await self.round.answer()  # type: ignore[union-attr]
        for delta in deltas:
            builder.apply(delta)
        request = self.round.next_request(finish, builder.output, answers)  # type: ignore[union-attr]
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
            self.response["status"] = "cancelled"
        try:
            encoded = encode(self.response)
            await asyncio.shield(self.journal.finish(encoded, self._item_rows(), []) if self.journal is not None else self._save(encoded))
        except Exception:
            log.warning("could not store cancelled response %s", self.response["id"])

    def _conversation_append(self, rows: list[dict[str, Any]]) -> Callable[[Any], bool] | None:
        """What a turn on a conversation adds to it, committed with its final form: its input
        and output items, in order, when it completed or stopped incomplete; nothing else. With
        `store: false` the items still go to the conversation (the client asked for it to be
        kept), the response itself does not."""
        if self.conversation is None or self.response["status"] not in ("completed", "incomplete"):
            return None
        return functools.partial(
            conversations.append, conversation_id=self.conversation, project=self.principal.project, rows=[(row["id"], row["body"]) for row in rows]
        )

    async def close(self) -> None:
        """Release the upstream call and the MCP sessions; safe to repeat."""
        await self.rest.aclose()
        self.sessions.release()

    async def _save(self, encoded: bytes) -> None:
        await self.store.save(self.response, encoded, self.principal.tenant, self._item_rows(), self.begun is not None)

    def _item_rows(self) -> list[dict[str, Any]]:
        response = self.response
        rows = [
            {"response_id": response["id"], "role": "input", "position": i, "id": item.id, "body": encode_item(item)} for i, item in enumerate(self.own_input)
        ]
        rows += [
            {"response_id": response["id"], "role": "output", "position": i, "id": item["id"], "body": encode(item)}
            for i, item in enumerate(response["output"])
        ]
        return rows
