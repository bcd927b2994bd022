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

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("rejoinder.feed")

Batch = tuple[int, bytes, bool]
"""One published batch: the number of its first event, its SSE frames, and whether the run
ended with it."""

_KEEP_SECONDS = 300  # how long a run's Redis Stream outlives the run, for late followers
_MAX_ENTRIES = 100_000  # a run's Redis Stream is trimmed to about this many batches


class Follower(Protocol):
    async def next(self, timeout: float) -> list[Batch]:
        """The batches published since the last call (or since following began), waiting up to
        `timeout` seconds for one; empty when none came."""
        ...

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


class RedisFeed:
    poll = 1.0  # a follower still checks the log this often, in case Redis lost a batch

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url, socket_connect_timeout=2)

    async def publish(self, response_id: str, first: int, joined: bytes, end: bool) -> None:
        key = _key(response_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {"f": first, "b": joined, "e": int(end)}, maxlen=_MAX_ENTRIES, approximate=True)
                pipe.expire(key, _KEEP_SECONDS if end else _KEEP_SECONDS * 12)
                await pipe.execute()
        except RedisError as exc:  # followers find the batch in the log instead
            log.warning("could not publish to Redis: %s", type(exc).__name__)

    async def follow(self, response_id: str) -> Follower:
        key = _key(response_id)
        try:
            newest = await self.redis.xrevrange(key, count=1)
        except RedisError:
            newest = []  # from the stream's start, if Redis comes back; the log has the rest
        return _RedisFollower(self.redis, key, newest[0][0] if newest else b"0-0")

    async def close(self) -> None:
        await self.redis.aclose()


class _RedisFollower:
    def __init__(self, redis, key: str, last: bytes) -> None:
        self.redis = redis
        self.key = key
        self.last = last

    async def next(self, timeout: float) -> list[Batch]:
        try:
            answer = await self.redis.xread({self.key: self.last}, count=1000, block=max(1, int(timeout * 1000)))
        except RedisError:  # Redis is away: the follower reads the log on this timer instead
            await asyncio.sleep(timeout)
            return []
        batches = []
        for _, entries in answer or ():
            for entry_id, fields in entries:
                self.last = entry_id
                batches.append((int(fields[b"f"]), fields[b"b"], fields[b"e"] == b"1"))
        return batches

    async def close(self) -> None:
        pass


def _key(response_id: str) -> str:
    return f"rejoinder:run:{response_id}"


Feed = LocalFeed | RedisFeed


def open_feed(redis_url: str | None) -> Feed:
    return RedisFeed(redis_url) if redis_url else LocalFeed()
