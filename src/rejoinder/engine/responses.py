"""What the API does to a response once it exists: read it, follow its stream, cancel it, delete
it, wherever it runs (this instance's background runner, another instance's, an open WebSocket
session that remembers it). The API layer calls these and turns their answers into bytes.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from rejoinder.engine import lifecycle
from rejoinder.engine.background import Feed, Runner, Send, follow
from rejoinder.protocol.errors import invalid, response_not_found
from rejoinder.store import runs
from rejoinder.store.repository import Store

if TYPE_CHECKING:
    from rejoinder.engine.sockets.session import Session

_CANCEL_WAIT = 5.0  # seconds a cancel waits for the running instance to stop the run


class Responses:
    def __init__(self, store: Store, runner: Runner, feed: Feed) -> None:
        self.store = store
        self.runner = runner
        self.feed = feed
        self.sessions: weakref.WeakSet[Session] = weakref.WeakSet()  # open WebSocket sessions here, which remember responses

    async def get(self, response_id: str, project: str) -> bytes:
        body = await self.store.get(response_id, project)
        if body is None:
            raise response_not_found(response_id)
        return body

    async def input_items(self, response_id: str, project: str, after: str | None, limit: int, descending: bool) -> tuple[list[Any], bool]:
        """A page of its input items as `(id, body)` rows, and whether more follow."""
        found = await self.store.input_items(response_id, project, after, limit, descending)
        if found is None:
            raise response_not_found(response_id)
        return found

    async def delete(self, response_id: str, project: str) -> None:
        """Delete a response: a background run going on here stops (elsewhere, it ends unseen),
        open sockets here forget it (other instances' keep it until they end)."""
        self.runner.stop(response_id)
        for session in self.sessions:
            session.forget(response_id)
        if not await self.store.delete(response_id, project):
            raise response_not_found(response_id)

    async def streamable(self, response_id: str, project: str) -> None:
        """Whether `follow` may follow it: a 404 or 400 when not."""
        await self._background(response_id, project, "stream", "This response cannot be streamed: only responses created with background=true can be.")

    async def follow(self, response_id: str, starting_after: int, send: Send) -> None:
        """A background run's events after `starting_after`, until it ends (see `engine.background.follow`)."""
        await follow(self.store, self.feed, response_id, starting_after, send)

    async def cancel(self, response_id: str, project: str) -> bytes:
        """Cancel a background run: a queued one ends here, a running one is stopped by its
        instance (this one, or another that sees the flag within `background.poll`). Its final
        form; a run that had already ended is returned unchanged."""
        state = await self._background(response_id, project, None, "Only responses created with background=true can be cancelled.")
        if state[0] in runs.ACTIVE:
            outcome = await self.store.transact(runs.cancel, response_id, self.store.endings)
            if outcome == "cancelled":
                await self.feed.publish(response_id, lifecycle.QUEUED_EVENTS, b"", True)
            elif outcome == "running":
                self.runner.stop(response_id)  # if it runs here; elsewhere its owner sees the flag
            state = await self._ended(response_id) or state
        return state[1]

    async def _background(self, response_id: str, project: str, param: str | None, refusal: str) -> tuple[str, bytes]:
        """The status and body of a background response; 404 when unknown (to `project`), else a
        400 (`refusal`) for a foreground one."""
        state = await self.store.transact(runs.state, response_id, project)
        if state is None:
            raise response_not_found(response_id)
        if not orjson.loads(state[1]).get("background"):
            raise invalid(param, refusal)
        return state

    async def _ended(self, response_id: str) -> tuple[str, bytes] | None:
        deadline = time.monotonic() + _CANCEL_WAIT
        while True:
            state = await self.store.transact(runs.state, response_id)
            if state is None or state[0] not in runs.ACTIVE or time.monotonic() > deadline:
                return state
            await asyncio.sleep(0.02)
