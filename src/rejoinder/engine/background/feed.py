"""Live fan-out of background runs' events to the streams that follow them.

The database's event log is the record (`store.runs`); a feed only wakes followers early. A
run publishes each batch after it is committed, so anything a follower receives live is
already in the log, and a follower that misses a batch (Redis restarted, a slow reader) finds
it there. With `redis_url`, batches go through a Redis Stream per run (`XADD`, trimmed, kept
a while after the run ends) and reach followers on every instance; without, an in-process
feed reaches followers on the run's own instance and the rest read the log on a short timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Protocol

log = logging.getLogger("rejoinder.feed")

Batch = tuple[int, bytes, bool]
"""One published batch: the number of its first event, its SSE frames, and whether the run
ended with it."""


class Follower(Protocol):
    async def next(self, timeout: float) -> list[Batch]:
        """The batches published since the last call (or since following began), waiting up to
        `timeout` seconds for one; empty when none came."""
        ...

    async def close(self) -> None: ...


class Feed(Protocol):
    poll: float  # seconds between a follower's reads of the log, in case the feed missed a batch

    async def publish(self, response_id: str, first: int, joined: bytes, end: bool) -> None:
        """A committed batch of a run's events, to its followers."""
        ...

    async def follow(self, response_id: str) -> Follower: ...

    async def close(self) -> None: ...


class LocalFeed:
    poll = 0.25  # seconds between log reads for runs on other instances

    def __init__(self) -> None:
        self._followers: dict[str, set[_LocalFollower]] = defaultdict(set)

    async def publish(self, response_id: str, first: int, joined: bytes, end: bool) -> None:
        for follower in self._followers.get(response_id, ()):
            follower.batches.append((first, joined, end))
            follower.arrived.set()

    async def follow(self, response_id: str) -> Follower:
        follower = _LocalFollower(self, response_id)
        self._followers[response_id].add(follower)
        return follower

    def _drop(self, follower: _LocalFollower) -> None:
        followers = self._followers.get(follower.response_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.response_id]

    async def close(self) -> None:
        pass


class _LocalFollower:
    def __init__(self, feed: LocalFeed, response_id: str) -> None:
        self.feed = feed
        self.response_id = response_id
        self.batches: list[Batch] = []
        self.arrived = asyncio.Event()

    async def next(self, timeout: float) -> list[Batch]:
        if not self.batches:
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except TimeoutError:
                return []
        self.arrived.clear()
        batches, self.batches = self.batches, []
        return batches

    async def close(self) -> None:
        self.feed._drop(self)


def open_feed(redis_url: str | None) -> Feed:
    """The feed this gateway's instances share: Redis's when configured (redis-py is imported
    only then), else this process's own."""
    if not redis_url:
        return LocalFeed()
    from rejoinder.engine.background.redis_feed import RedisFeed

    return RedisFeed(redis_url)
