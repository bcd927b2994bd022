"""The feed on Redis (see `engine.background.feed`): each run's batches go through a Redis
Stream of its own (`XADD`, trimmed, kept a while after the run ends), so followers on every
instance get them live. A module of its own so that a gateway without Redis never imports
redis-py."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rejoinder.engine.background.feed import Batch, Follower

log = logging.getLogger("rejoinder.feed")

_KEEP_SECONDS = 300  # how long a run's Redis Stream outlives the run, for late followers
_MAX_ENTRIES = 100_000  # a run's Redis Stream is trimmed to about this many batches


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
