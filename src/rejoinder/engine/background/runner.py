"""Background runs: queued in the database, run by whichever instance claims them, followed and
cancelled from any instance.

A `background: true` request is checked like any other, then queued with its first two events
(`response.created`, `response.queued`) and answered at once. Each instance's `Runner` claims
the oldest queued runs, up to `background.max_concurrent` at a time, and drives each through the
same engine as a foreground stream; its `Journal` commits every batch of events to the run's
log, then publishes it on the feed (`engine.background.feed`). A run's lease is its instance's heartbeat:
when that lapses, another instance re-queues the run or ends it (`store.runs.end_orphan`).
Cancelling sets a flag the owner polls (`poll` seconds), or ends a queued run on the spot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from rejoinder.engine import lifecycle
from rejoinder.engine.access import Principal
from rejoinder.engine.background.feed import Feed
from rejoinder.engine.background.webhooks import Deliverer
from rejoinder.engine.builder import Builder
from rejoinder.engine.engine import Engine
from rejoinder.engine.lifecycle import Sequence
from rejoinder.engine.polling import until_woken
from rejoinder.engine.run import Run
from rejoinder.engine.sinks import Finished, Stream
from rejoinder.engine.skeleton import skeleton
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.request import Request, decode_create_response
from rejoinder.protocol.response import Response, decode_response, encode
from rejoinder.protocol.sse import frames
from rejoinder.protocol.tools import decode_tools
from rejoinder.store import runs
from rejoinder.store.repository import Store
from rejoinder.store.schema import ItemRow

log = logging.getLogger("rejoinder.background")

_SNAPSHOT_EVERY = 0.25  # seconds: how stale a running run's polled form may be


class Journal(Stream):
    """A running background run's sink, its record: each batch of events committed to its log,
    then published; the final form and the last events committed together, once."""

    def __init__(self, store: Store, feed: Feed, response: Response) -> None:
        super().__init__(response, Sequence(lifecycle.QUEUED_EVENTS))  # it goes on after the events logged when it was queued
        self.store = store
        self.feed = feed
        self.snapshot_at = 0.0
        self.lost = False  # another instance ended the run: this one stops writing

    async def send(self, events: list[tuple[str, bytes]], last: bool) -> None:
        if not events or self.lost:
            return
        first, joined = self._take(events)
        now = time.monotonic()
        snapshot = None
        if now - self.snapshot_at >= _SNAPSHOT_EVERY:  # readers polling the run see its output so far
            self.snapshot_at = now
            if self.builder is not None:
                self.builder.progress()
            snapshot = encode(self.response)
        try:
            await self._write(runs.append, self.response.id, first, joined, self.sequence.next - 1, self.store.instance, snapshot)
        except runs.LostRun:  # ended elsewhere, or deleted: stop generating it
            self.lost = True
            log.warning("background run %s is no longer this instance's: stopping it", self.response.id)
            raise asyncio.CancelledError from None
        await self.feed.publish(self.response.id, first, joined, False)

    async def keep(self, ending: Finished) -> None:
        """The closing event first: it commits with the final form."""
        ending.close()
        events = list(ending.events)
        ending.events.clear()
        await self.finish(ending.encoded, ending.rows, events, ending.also)

    async def keep_cancelled(self, ending: Finished) -> None:
        await self.finish(ending.encoded, ending.rows, [])

    async def finish(self, encoded: bytes, item_rows: list[ItemRow], events: list[tuple[str, bytes]], also: Callable[[Any], Any] | None = None) -> None:
        if self.lost:
            return
        first, joined = self._take(events)
        response = self.response
        row = {"id": response.id, "status": response.status, "body": encoded}
        outbox = self.store.endings.outbox(response.status, response.id)
        try:
            await self._write(runs.finish, row, item_rows, first, joined, self.sequence.next - 1, self.store.instance, outbox, also)
        except runs.LostRun:
            log.warning("background run %s was ended elsewhere; its result here is dropped", response.id)
            return
        await self.feed.publish(response.id, first, joined, True)

    async def _write(self, fn: Any, *args: Any) -> None:
        """Commit through the store's writer, trying again while the database refuses (the run
        waits meanwhile: its events are numbered, none may be skipped); `LostRun` is final."""
        for attempt in itertools.count():
            try:
                await self.store.write(fn, *args)
                return
            except runs.LostRun:
                raise
            except Exception as exc:
                log.error("background run %s: could not write its log (%s), attempt %d", self.response.id, type(exc).__name__, attempt + 1)
                await asyncio.sleep(min(10.0, 0.1 * 2**attempt))

    def _take(self, events: list[tuple[str, bytes]]) -> tuple[int, bytes]:
        """The number of the first of `events` (numbered by the response's sequence, the last
        of them the latest), and their frames."""
        return self.sequence.next - len(events), frames(events)


def _collecting(response: Response, sequence: Sequence) -> tuple[Builder, list[tuple[str, bytes]]]:
    """A builder whose events are collected: for the events a run logs without a model turn
    (being queued, failing to start)."""
    events: list[tuple[str, bytes]] = []
    return Builder(response, lambda event: events.append((event["type"], encode(event))), False, False, _NO_TOOLS, sequence), events


_NO_TOOLS = decode_tools([], "auto")


def _nothing(_: Any) -> None:
    pass


class Runner:
    """This instance's share of the queue."""

    def __init__(
        self, engine: Engine, store: Store, feed: Feed, deliverer: Deliverer, max_concurrent: int, poll: float, ended: Callable[[Run, Principal], None]
    ) -> None:
        self.engine = engine
        self.ended = ended  # a run's turn is over: its tokens are counted (`api.observe.Metrics.ended`)
        self.deliverer = deliverer
        self.delivering: asyncio.Task | None = None
        self.store = store
        self.feed = feed
        self.max_concurrent = max_concurrent
        self.poll = poll
        self.running: dict[str, tuple[asyncio.Task, Journal, bytes]] = {}
        self.reserved = 0  # runs accepted here, to start here once queued
        self.backlog = True  # runs may be waiting: a freed slot looks at the queue at once, not at the next tick
        self.wake = asyncio.Event()
        self.accepting = True
        self.loop_task: asyncio.Task | None = None

    def start(self) -> None:
        self.loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, request: Request, principal: Principal, raw: bytes) -> tuple[Response, list[str]]:
        """Check and queue a background request; its response (status `queued`) and the
        warnings. With room here and no run waiting, this instance takes the run as it queues it,
        sparing a claim."""
        turn = await self.engine.prepare(request, principal)  # a bad request is the POST's error, not the run's
        response = skeleton(request)
        response.status, response.background = "queued", True
        builder, logged = _collecting(response, Sequence())
        builder.queued()
        room = self.accepting and len(self.running) + self.reserved < self.max_concurrent
        self.reserved += room
        try:
            here = await self.store.write(
                runs.enqueue,
                response,
                encode(response),
                principal.tenant,
                msgspec.json.encode(principal),
                raw,
                frames(logged),
                len(logged) - 1,
                self.store.instance if room else None,
            )
        finally:
            self.reserved -= room
        if here:
            self._launch(response.id, raw, msgspec.structs.replace(response, output=[]), principal)
        else:
            self.backlog = True
        return response, turn.warnings

    async def _loop(self) -> None:
        while self.accepting:
            try:
                free = self.max_concurrent - len(self.running) - self.reserved
                if free > 0:
                    claimed = await self.store.transact(runs.claim, self.store.instance, free)
                    self.backlog = len(claimed) == free
                    for response_id, request, body, project, principal in claimed:
                        queued_by = msgspec.json.decode(principal, type=Principal) if principal is not None else Principal(project, None, False)
                        self._launch(response_id, request, decode_response(body), queued_by)
                if self.running:
                    for response_id in await self.store.transact(runs.cancels, self.store.instance):
                        self.stop(response_id)
                if self.delivering is None or self.delivering.done():
                    self.delivering = asyncio.create_task(self.deliverer.deliver_due())
            except Exception as exc:  # a busy or vanished database: try again on the next tick
                log.warning("background queue: %s", type(exc).__name__)
            await until_woken(self.wake, self.poll)

    def _launch(self, response_id: str, raw: bytes, response: Response, principal: Principal) -> None:
        """Run it for `principal`, who queued it: in their project, spending from their limits."""
        response.status = "in_progress"
        journal = Journal(self.store, self.feed, response)
        task = asyncio.create_task(self._run(journal, raw, principal))
        self.running[response_id] = (task, journal, raw)
        task.add_done_callback(partial(self._done, response_id))

    def _done(self, response_id: str, _: asyncio.Task) -> None:
        self.running.pop(response_id, None)
        if self.backlog:  # room for the next queued run
            self.wake.set()

    def stop(self, response_id: str) -> None:
        """Cancel a run if this instance is running it (once: a second cancellation could cut
        short the first one's saving of what was generated)."""
        entry = self.running.get(response_id)
        if entry is not None and not entry[0].cancelling():
            entry[0].cancel()

    async def _run(self, journal: Journal, raw: bytes, principal: Principal) -> None:
        try:
            run = await self.engine.start(decode_create_response(raw), principal, journal)
        except asyncio.CancelledError:
            lifecycle.end(journal.response, "cancelled")
            await asyncio.shield(journal.finish(encode(journal.response), [], []))
            return
        except ApiError as exc:  # the model could not start: the run fails with that error
            await self._fail(journal, exc)
            return
        except Exception:
            log.exception("background run %s could not start", journal.response.id)
            await self._fail(journal, ApiError(500, "The gateway failed while starting the response.", type="server_error", code="server_error"))
            return
        try:
            await run.finish()
        except asyncio.CancelledError:
            pass  # the run kept itself as cancelled
        finally:
            self.ended(run, principal)
            await run.close()

    async def _fail(self, journal: Journal, error: ApiError) -> None:
        builder, events = _collecting(journal.response, journal.sequence)
        builder.fail(error)
        builder.terminal()
        await journal.finish(encode(journal.response), [], events)

    async def shutdown(self, grace: float) -> None:
        """Stop claiming; give running runs `grace` seconds to end, then hand back the rest:
        to the queue when they emitted nothing of their own, else ended as failed."""
        self.accepting = False
        self.wake.set()
        if self.loop_task is not None:
            await self.loop_task
        if self.delivering is not None:
            await self.delivering
        if self.running:
            await asyncio.wait([task for task, _, _ in self.running.values()], timeout=grace)
        left = dict(self.running)
        for task, journal, _ in left.values():
            journal.lost = True  # its end is written below, by the same rule as a dead instance's
            task.cancel()
        if left:
            await asyncio.wait([task for task, _, _ in left.values()])
            await self.store.write(_nothing)  # the writer is FIFO: the runs' last log writes are in
        for response_id, (_, _, raw) in left.items():
            try:
                await self.store.transact(runs.end_orphan, response_id, raw, False, "shut_down", self.store.endings)
            except Exception as exc:
                log.error("could not hand back background run %s at shutdown: %s", response_id, type(exc).__name__)
