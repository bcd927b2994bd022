"""Benchmark: what auth, rate limits and metrics cost a response request, in-process (no network
noise), with them on against them off.

On: a project key already known to the instance (`Access.principal`), a key and a project limit
checked and counted (`Limiter.admit`: in memory, and on the real Redis at 127.0.0.1 when
reachable: this process's CPU only, Redis's own is not counted), and the request's metrics,
usage counts and token spend (`Metrics.turn`). Off: no key (an open gateway), no limits, the
same metrics. And a wrong key, on a real SQLite store: refused after one database read, then
from memory.

    python bench/access.py [--requests 50000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import msgspec
from harness import finished_run  # bench/ is on the path: this script's folder

from rejoinder.api.observe import Metrics
from rejoinder.api.usage import Tally
from rejoinder.engine.access.limits import Limiter
from rejoinder.engine.access.principals import Access, principal_of
from rejoinder.protocol.access import Limits
from rejoinder.protocol.errors import ApiError
from rejoinder.store.access import Holder
from rejoinder.store.repository import Store

KEY = "sk-rj-" + "k" * 43


async def per_request(count: int, access: Access, limiter: Limiter, metrics: Metrics, authorization: str | None, run, concurrency: int = 1) -> float:
    """µs of CPU for one request's auth, limits and metrics, `concurrency` requests at a time."""
    now = time.monotonic()

    async def client() -> None:
        for _ in range(count // concurrency):
            principal = await access.principal(authorization, None)
            await limiter.admit(principal)
            metrics.turn("json", 200, now, run, principal)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - started) / (count // concurrency * concurrency) * 1e6


async def refused(count: int) -> float:
    """µs of CPU to refuse a wrong key a client keeps sending (the first time: a database read)."""
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='rejoinder-access-')}/bench.db")
    store.migrate()
    keyed = Access(store, "sk-master-" + "m" * 30)
    wrong = "Bearer sk-rj-" + "w" * 43
    started = time.process_time()
    for _ in range(count):
        try:
            await keyed.principal(wrong, None)
        except ApiError:
            pass
    spent = time.process_time() - started
    store.close()
    return spent / count * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    open_gateway = Access(None, None)  # no master key: no key at all
    keyed = Access(None, "sk-master-" + "m" * 30)
    huge = 10**12  # limits checked and counted, never reached
    limits = msgspec.json.encode(Limits(None, huge, huge))
    keyed.known[KEY] = principal_of(Holder("key_1", "proj_1", limits, limits))  # a key this instance has seen
    here = Limiter(None)
    metrics = Metrics(Tally(None), here)  # counted in memory; never flushed here
    run = finished_run()
    off = await per_request(args.requests, open_gateway, here, metrics, "Bearer unused", run)
    on = await per_request(args.requests, keyed, here, metrics, f"Bearer {KEY}", run)
    print(f"off (no key, no limits, metrics):              {off:6.1f} µs CPU a request")
    print(f"on  (a known key, key+project limits in memory, metrics): {on:6.1f} µs  (+{on - off:.1f} µs)")
    print(f"a wrong key, refused again (401):              {await refused(args.requests):6.1f} µs CPU a request")
    shared = Limiter(args.redis)
    try:
        await shared.redis.ping()
    except Exception as exc:
        print(f"Redis at {args.redis} not reachable ({type(exc).__name__}): no Redis row")
        return
    metrics.limiter = shared
    for concurrency in (1, 8, 64):
        redis_on = await per_request(max(concurrency, args.requests // 10), keyed, shared, metrics, f"Bearer {KEY}", run, concurrency)
        print(f"on  (the same, limits on Redis, {concurrency:>2} at a time; this process's CPU): {redis_on:6.1f} µs  (+{redis_on - off:.1f} µs)")
    await shared.close()


if __name__ == "__main__":
    asyncio.run(main())
