"""Requests and tokens per minute, and dollars per day or month, per key and per project,
shared by every instance.

A rate window is the current minute. A request is admitted when each of its principal's scopes
is under its requests and tokens for the minute and its spend for the budget's period, and then
counts one request in each; its tokens and their price count when its turn ends (a turn's size
is not known before).

With `redis_url`, one Lua script checks and counts atomically on Redis's clock, so every
instance sees the same counts. The requests waiting while a call is out go together in the
next one, and the turns' spending rides along with it (or goes on its own after `_SPEND_DELAY`),
so a request costs one round trip at most, and less under load. Without Redis, the counts are
kept in this process. A Redis that cannot be reached admits (and logs): the limits protect
budgets, and an outage of Redis must not become an outage of the gateway.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any

import orjson

from rejoinder.engine.access.principals import Principal, Window
from rejoinder.protocol.errors import ApiError

log = logging.getLogger("rejoinder.limits")

_PREFIX = "rejoinder:limit:"
_SPEND_DELAY = 0.05  # seconds spending waits for a request's call to ride along with
_PERIOD_SECONDS = 32 * 86400  # how long a period's spend outlives it in Redis

# ARGV[1]: JSON {"spend": [[scope, tokens, micro-dollars, period], …], "requests": [[[scope,
# rpm, tpm, budget, period], …], …]} (0: no limit). Spending is counted first, then each request
# in order. Returns JSON [seconds left in the minute, [[admitted, [[requests, tokens, spent], …]], …]].
_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
local minute = math.floor(now / 60)
local job = cjson.decode(ARGV[1])
for _, s in ipairs(job.spend) do
  if s[2] > 0 then
    redis.call('INCRBY', s[1] .. minute .. ':t', s[2])
    redis.call('EXPIRE', s[1] .. minute .. ':t', 120)
  end
  if s[3] > 0 then
    redis.call('INCRBY', s[1] .. 'spend:' .. s[4], s[3])
    redis.call('EXPIRE', s[1] .. 'spend:' .. s[4], ARGV[2])
  end
end
local answers = {}
for i, request in ipairs(job.requests) do
  local counts, admitted = {}, 1
  for j, w in ipairs(request) do
    local requests = tonumber(redis.call('GET', w[1] .. minute .. ':r') or '0')
    local tokens = tonumber(redis.call('GET', w[1] .. minute .. ':t') or '0')
    local spent = 0
    if w[4] > 0 then spent = tonumber(redis.call('GET', w[1] .. 'spend:' .. w[5]) or '0') end
    if (w[2] > 0 and requests >= w[2]) or (w[3] > 0 and tokens >= w[3]) or (w[4] > 0 and spent >= w[4]) then admitted = 0 end
    counts[j] = {requests, tokens, spent}
  end
  if admitted == 1 then
    for _, w in ipairs(request) do
      redis.call('INCR', w[1] .. minute .. ':r')
      redis.call('EXPIRE', w[1] .. minute .. ':r', 120)
    end
  end
  answers[i] = {admitted, counts}
end
return cjson.encode({60 - now % 60, answers})
"""

Verdict = tuple[int, bool, list[list[int]]]
"""Seconds left in the minute, whether admitted, and each scope's `[requests, tokens, spent]`
before this request."""


def period_of(period: str, now: float) -> tuple[str, int]:
    """A budget period's name (`2026-11-27`, `2026-11`) and the seconds until the next one."""
    day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    if period == "day":
        ends = day.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
        return day.strftime("%Y-%m-%d"), int(ends.timestamp() - now) + 1
    first = day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ends = (first + datetime.timedelta(days=32)).replace(day=1)
    return day.strftime("%Y-%m"), int(ends.timestamp() - now) + 1


class Limiter:
    def __init__(self, redis_url: str | None) -> None:
        self.redis = None
        if redis_url:
            from redis.asyncio import Redis  # a gateway without Redis never imports redis-py (6 MB)

            self.redis = Redis.from_url(redis_url)
        self._script = self.redis.register_script(_SCRIPT) if self.redis is not None else None
        self.counts: dict[tuple[str, int], list[int]] = {}  # without Redis: (scope, minute) → [requests, tokens]
        self.spent: dict[tuple[str, str], int] = {}  # without Redis: (scope, period) → micro-dollars
        self.waiting: list[tuple[Principal, asyncio.Future]] = []  # requests for the next call to Redis
        self.unspent: dict[tuple[str, str], list[int]] = {}  # (scope, period) → [tokens, micro-dollars] not yet sent
        self.calling: asyncio.Task | None = None

    async def admit(self, principal: Principal) -> dict[str, str]:
        """Count a request against its principal's limits: the `x-ratelimit-*` headers to answer
        with, or a 429 (`rate_limit_exceeded`, or `insufficient_quota` for a spent budget)."""
        if not principal.windows:
            return {}
        if self.redis is None:
            verdict = self._admit_here(principal)
        else:
            future = asyncio.get_running_loop().create_future()
            self.waiting.append((principal, future))
            self._call()
            verdict = await future
            if verdict is None:  # Redis unreachable: admitted
                return {}
        reset, admitted, counts = verdict
        headers = _headers(principal, reset, counts, admitted)
        if not admitted:
            raise _refusal(principal, reset, counts, headers)
        return headers

    def spend(self, principal: Principal, tokens: int, cost: int) -> None:
        """Count a finished turn's tokens and its cost (micro-dollars) against its principal."""
        if not principal.windows or (tokens <= 0 and cost <= 0):
            return
        now = time.time()
        for w in principal.windows:
            period = period_of(w.period, now)[0] if w.budget else ""
            if self.redis is None:
                self.counts.setdefault((w.scope, int(now // 60)), [0, 0])[1] += tokens
                if w.budget:
                    self.spent[(w.scope, period)] = self.spent.get((w.scope, period), 0) + cost
                continue
            pending = self.unspent.setdefault((w.scope, period), [0, 0])
            pending[0] += tokens if w.tpm else 0
            pending[1] += cost if w.budget else 0
        if self.redis is not None:
            asyncio.get_running_loop().call_later(_SPEND_DELAY, self._call)

    def _admit_here(self, principal: Principal) -> Verdict:
        now = time.time()
        minute = int(now // 60)
        if len(self.counts) > 10_000:
            self.counts = {key: value for key, value in self.counts.items() if key[1] == minute}
        windows = [self.counts.setdefault((w.scope, minute), [0, 0]) for w in principal.windows]
        counts = [
            [pair[0], pair[1], self.spent.get((w.scope, period_of(w.period, now)[0]), 0) if w.budget else 0]
            for w, pair in zip(principal.windows, windows, strict=True)
        ]
        admitted = not any(_over(w, *found) for w, found in zip(principal.windows, counts, strict=True))
        if admitted:
            for pair in windows:
                pair[0] += 1
        return 60 - int(now) % 60, admitted, counts

    def _call(self) -> None:
        if self.calling is None and (self.waiting or self.unspent):
            self.calling = asyncio.get_running_loop().create_task(self._calls())

    async def _calls(self) -> None:
        """Call Redis until nothing waits: each call takes every request and all the spending
        that came while the one before it was out."""
        from redis.exceptions import RedisError  # imported with Redis itself, in __init__

        try:
            while self.waiting or self.unspent:
                batch, self.waiting = self.waiting, []
                spending, self.unspent = self.unspent, {}
                now = time.time()
                job = {
                    "spend": [[_PREFIX + scope + ":", tokens, cost, period] for (scope, period), (tokens, cost) in spending.items()],
                    "requests": [[_window_args(w, now) for w in principal.windows] for principal, _ in batch],
                }
                try:
                    reset, answers = orjson.loads(await self._script(args=[orjson.dumps(job), _PERIOD_SECONDS]))
                    verdicts: list[Any] = [(int(reset), bool(admitted), counts) for admitted, counts in answers]
                except RedisError as exc:
                    log.warning("rate limits not applied, spending not counted: Redis unreachable (%s)", type(exc).__name__)
                    verdicts = [None] * len(batch)
                for (_, future), verdict in zip(batch, verdicts, strict=True):
                    if not future.done():
                        future.set_result(verdict)
        finally:
            self.calling = None

    async def close(self) -> None:
        if self.redis is not None:
            self._call()  # the last spending
            if self.calling is not None:
                await self.calling
            await self.redis.aclose()


def _window_args(w: Window, now: float) -> list[Any]:
    return [_PREFIX + w.scope + ":", w.rpm or 0, w.tpm or 0, w.budget or 0, period_of(w.period, now)[0] if w.budget else ""]


def _over(w: Window, requests: int, tokens: int, spent: int) -> bool:
    return bool((w.rpm and requests >= w.rpm) or (w.tpm and tokens >= w.tpm) or (w.budget and spent >= w.budget))


def _headers(principal: Principal, reset: int, counts: list[list[int]], admitted: bool) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers for the tightest of the principal's scopes."""
    headers = {}
    for kind, index, taken in (("requests", 0, int(admitted)), ("tokens", 1, 0)):
        room = [(limit, max(0, limit - counts[i][index] - taken)) for i, w in enumerate(principal.windows) if (limit := (w.rpm, w.tpm)[index])]
        if room:
            limit, remaining = min(room, key=lambda pair: pair[1])
            headers.update({f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(remaining), f"x-ratelimit-reset-{kind}": f"{reset}s"})
    return headers


def _refusal(principal: Principal, reset: int, counts: list[list[int]], headers: dict[str, str]) -> ApiError:
    """The 429 for the first of the principal's scopes that is over a limit."""
    w, (requests, tokens, spent) = next((w, found) for w, found in zip(principal.windows, counts, strict=True) if _over(w, *found))
    if w.rpm and requests >= w.rpm or w.tpm and tokens >= w.tpm:
        kind, label, limit, used = ("requests", "RPM", w.rpm, requests) if w.rpm and requests >= w.rpm else ("tokens", "TPM", w.tpm, tokens)
        message = f"Rate limit reached for {w.scope} on {kind} per min ({label}): Limit {limit}, Used {used}. Please try again in {reset}s."
        return ApiError(429, message, type=kind, code="rate_limit_exceeded", headers={**headers, "Retry-After": str(reset)})
    renews = period_of(w.period, time.time())[1]
    message = f"The budget of ${w.budget / 1e6:.2f} a {w.period} for {w.scope} is spent (${spent / 1e6:.2f} used). It renews in {renews}s."
    return ApiError(429, message, type="insufficient_quota", code="insufficient_quota", headers={**headers, "Retry-After": str(renews)})
