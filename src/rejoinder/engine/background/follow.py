"""Following a background run's stream from any instance: replay its logged events after the
client's `starting_after`, then go on live until the run ends.

Following starts on the feed before the log is read, so a batch committed meanwhile arrives
one way or the other; events are told apart by their sequence numbers, so none is sent twice.
When the feed stays quiet (a run on an instance without Redis, a lost batch), the log is read
again every `feed.poll` seconds, and the run's status there says when it has ended.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rejoinder.engine.background.feed import Feed
from rejoinder.protocol.sse import after, count
from rejoinder.store import runs
from rejoinder.store.repository import Store

Send = Callable[[bytes], Awaitable[None]]


async def follow(store: Store, feed: Feed, response_id: str, starting_after: int, send: Send) -> None:
    """Send the run's events numbered above `starting_after`, as they were first sent, until
    its end (a cancelled run's stream simply ends: the spec has no stream event for it)."""
    follower = await feed.follow(response_id)
    last = starting_after

    async def replay() -> bool:
        """Send what the log holds beyond `last`; whether the run is still going."""
        going, batches = await store.transact(runs.log_after, response_id, last)
        for first, joined in batches:
            await _send(first, joined)
        return going

    async def _send(first: int, joined: bytes) -> None:
        nonlocal last
        fresh = after(first, joined, last)
        if fresh:
            await send(fresh)
            last = max(last, first + count(joined) - 1)

    try:
        quiet = True  # the run may have ended before following began: look at its status first
        while True:
            if quiet and not await replay():
                return
            batches = await follower.next(feed.poll)
            for first, joined, end in batches:
                if first > last + 1:  # the feed missed some: the log has them
                    await replay()
                await _send(first, joined)
                if end:
                    return
            quiet = not batches
    finally:
        await follower.close()
