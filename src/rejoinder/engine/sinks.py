"""Where a run's events go, and how its end is kept: one small interface for every transport.

A `Run` (see `engine.run`) drives a response to its end and hands what it makes to its sink. This
base is a client that waits for the whole Response (a JSON body): no event is even built, and
the final form is stored (when asked) before the answer. A client's stream (`api.responses.SseStream`,
`engine.sockets.session.Lane`) sends the events as they come; a background run's log
(`engine.background.runner.Journal`) commits them, and keeps the final form with its last events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from rejoinder.engine.lifecycle import Sequence
from rejoinder.protocol.response import Response
from rejoinder.store.schema import ItemRow

if TYPE_CHECKING:
    from rejoinder.engine.builder import Builder


class Finished(Protocol):
    """A run's end as its sink sees it (`engine.run.Ending`), ready to keep."""

    encoded: bytes  # the final form
    rows: list[ItemRow]  # its items
    also: Callable[[Any], Any] | None  # what it adds to a conversation, committed with it
    events: list[tuple[str, bytes]]  # the events not sent yet

    def close(self) -> None:
        """Build the event that closes the stream."""

    async def save(self) -> None:
        """Store the final form in the store (when asked), or end the response failed."""

    async def save_cancelled(self) -> None:
        """Store what a run whose client left had made."""


class Sink:
    streams = False
    """Whether events are built and sent (a JSON body needs none)."""

    def __init__(self, response: Response | None = None, sequence: Sequence | None = None) -> None:
        self.response = response  # one recorded before the run (a background run's, queued): the run continues it
        self.sequence = sequence or Sequence()  # the response's event numbers: steering's events follow the run's
        self.builder: Builder | None = None  # the run's, for a sink that shows the snapshot as it goes

    async def send(self, events: list[tuple[str, bytes]], last: bool) -> None:
        """`(event type, event JSON)` pairs, serialized the moment each happened; `last` when
        they end the stream (so the transport can finish in the same write)."""

    async def keep(self, ending: Finished) -> None:
        """Keep the run's end, then build its closing event: a store that fails turns the
        ending into a failure the client is told of."""
        await ending.save()
        ending.close()

    async def keep_cancelled(self, ending: Finished) -> None:
        """Keep what a run whose client left had made, as cancelled."""
        await ending.save_cancelled()


class Stream(Sink):
    """A client's stream: events go out as they happen."""

    streams = True
