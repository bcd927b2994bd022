"""Requests and tokens per minute, per key and per project, shared by every instance.

A window is the current minute. A request is admitted when each of its principal's scopes is
under its requests and its tokens for the minute, and then counts one request in each; its
tokens count when its turn ends (a turn's size is not known before). With `redis_url`, one Lua
script checks and counts atomically on Redis's clock, so every instance sees the same counts;
without, they are kept in this process. A Redis that cannot be reached admits (and logs): the
limits protect budgets, and an outage of Redis must not become an outage of the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rejoinder.engine.access import Principal, Window
from rejoinder.protocol.errors import ApiError

log = logging.getLogger("rejoinder.limits")

_WINDOW = 60
_PREFIX = "rejoinder:limit:"

# KEYS: one prefix per scope; ARGV: rpm, tpm per scope (0: none). Returns the seconds left in
# the minute, whether admitted, and each scope's requests and tokens before this request.
_ADMIT = """
local now = tonumber(redis.call('TIME')[1])
local window = math.floor(now / 60)
local result = {60 - now % 60, 1}
for i, scope in ipairs(KEYS) do
  local requests = tonumber(redis.call('GET', scope .. window .. ':r') or '0')
  local tokens = tonumber(redis.call('GET', scope .. window .. ':t') or '0')
  local rpm, tpm = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if (rpm > 0 and requests >= rpm) or (tpm > 0 and tokens >= tpm) then result[2] = 0 end
  table.insert(result, requests)
  table.insert(result, tokens)
end
if result[2] == 1 then
  for _, scope in ipairs(KEYS) do
    redis.call('INCR', scope .. window .. ':r')
    redis.call('EXPIRE', scope .. window .. ':r', 120)
  end
end
return result
"""

# KEYS: one prefix per scope; ARGV[1]: the tokens a turn used.
_SPEND = """
local window = math.floor(tonumber(redis.call('TIME')[1]) / 60)
for _, scope in ipairs(KEYS) do
  redis.call('INCRBY', scope .. window .. ':t', ARGV[1])
  redis.call('EXPIRE', scope .. window .. ':t', 120)
end
"""


class Limiter:
    def __init__(self, redis_url: str | None) -> None:
        self.redis = Redis.from_url(redis_url) if redis_url else None
        self._admit = self.redis.register_script(_ADMIT) if self.redis is not None else None
        self._spend = self.redis.register_script(_SPEND) if self.redis is not None else None
        self.counts: dict[tuple[str, int], list[int]] = {}  # (scope, minute) → [requests, tokens], without Redis
        self.spending: set[asyncio.Task] = set()  # token counts on their way to Redis

    async def admit(self, principal: Principal) -> dict[str, str]:
        """Count a request against its principal's limits: the `x-ratelimit-*` headers to answer
        with, or a 429 `rate_limit_exceeded` carrying them and `Retry-After`."""
        windows = principal.windows
        if not windows:
            return {}
        if self.redis is None:
            reset, admitted, counts = self._admit_here(principal)
        else:
            try:
                found = await self._admit(keys=[_PREFIX + w.scope + ":" for w in windows], args=[n for w in windows for n in (w.rpm or 0, w.tpm or 0)])
            except RedisError as exc:
                log.warning("rate limits not applied: Redis unreachable (%s)", type(exc).__name__)
                return {}
            reset, admitted, counts = int(found[0]), bool(found[1]), [int(n) for n in found[2:]]
        headers = _headers(principal, reset, counts, admitted)
        if not admitted:
            raise _refusal(principal, reset, counts, headers)
        return headers

    def _admit_here(self, principal: Principal) -> tuple[int, bool, list[int]]:
        now = time.time()
        minute = int(now // _WINDOW)
        if len(self.counts) > 10_000:
            self.counts = {key: value for key, value in self.counts.items() if key[1] == minute}
        windows = [self.counts.setdefault((w.scope, minute), [0, 0]) for w in principal.windows]
        counts = [n for pair in windows for n in pair]
        admitted = not any(_over(w, pair[0], pair[1]) for w, pair in zip(principal.windows, windows, strict=True))
        if admitted:
            for pair in windows:
                pair[0] += 1
        return _WINDOW - int(now) % _WINDOW, admitted, counts

    def spend(self, principal: Principal, tokens: int) -> None:
        """Count a finished turn's tokens in its principal's minute (on Redis, without waiting)."""
        windows = [w for w in principal.windows if w.tpm]
        if not windows or tokens <= 0:
            return
        if self.redis is None:
            minute = int(time.time() // _WINDOW)
            for w in windows:
                self.counts.setdefault((w.scope, minute), [0, 0])[1] += tokens
            return
        task = asyncio.get_running_loop().create_task(self._spend_shared(windows, tokens))
        self.spending.add(task)
        task.add_done_callback(self.spending.discard)

    async def _spend_shared(self, windows: list[Window], tokens: int) -> None:
        try:
            await self._spend(keys=[_PREFIX + w.scope + ":" for w in windows], args=[tokens])
        except RedisError as exc:
            log.warning("tokens not counted against limits: Redis unreachable (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self.spending:
            await asyncio.wait(self.spending)
        if self.redis is not None:
            await self.redis.aclose()


def _over(window: Window, requests: int, tokens: int) -> bool:
    return bool((window.rpm and requests >= window.rpm) or (window.tpm and tokens >= window.tpm))


def _headers(principal: Principal, reset: int, counts: list[int], admitted: bool) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers for the tightest of the principal's scopes."""
    headers = {}
    for kind, index, spent in (("requests", 0, int(admitted)), ("tokens", 1, 0)):
        room = [(limit, max(0, limit - counts[2 * i + index] - spent)) for i, w in enumerate(principal.windows) if (limit := (w.rpm, w.tpm)[index])]
        if room:
            limit, remaining = min(room, key=lambda pair: pair[1])
            headers.update({f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(remaining), f"x-ratelimit-reset-{kind}": f"{reset}s"})
    return headers


def _refusal(principal: Principal, reset: int, counts: list[int], headers: dict[str, str]) -> ApiError:
    """The 429 for the first of the principal's scopes that is over its limit."""
    i, w = next((i, w) for i, w in enumerate(principal.windows) if _over(w, counts[2 * i], counts[2 * i + 1]))
    requests, tokens = counts[2 * i], counts[2 * i + 1]
    kind, label, limit, used = ("requests", "RPM", w.rpm, requests) if w.rpm and requests >= w.rpm else ("tokens", "TPM", w.tpm, tokens)
    message = f"Rate limit reached for {w.scope} on {kind} per min ({label}): Limit {limit}, Used {used}. Please try again in {reset}s."
    return ApiError(429, message, type=kind, code="rate_limit_exceeded", headers={**headers, "Retry-After": str(reset)})
