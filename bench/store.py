"""What recording a stream as in progress costs the store, in CPU per response.

A streamed response is written twice: its in-progress record before the client sees its id
(`Store.begin`), then its final form over it. This drives the real `Store` (SQLite, or
PostgreSQL with --postgres URL) with 32 responses in flight and prints the process's CPU time
per response, with and without the in-progress record, for a model whose first token comes
after 0 ms (a canned upstream) and after 20 ms (closer to a real model).

Then what a lone response waits for its write at concurrency 1 (a request's added latency):
the p50 wall time of `save` (the hop to the writer thread, the rows, the commit, the hop back)
and of an empty write (the hops and an empty transaction alone), on uvloop as the gateway runs.

    python bench/store.py [--count 4000] [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import msgspec
import uvloop

from rejoinder.protocol.ids import new_id
from rejoinder.protocol.response import Response
from rejoinder.store.repository import Store
from rejoinder.store.schema import ItemRow, Tenant

BODY = b'{"object":"response","output":[],"text":"' + b"x" * 1500 + b'"}'


async def run(store: Store, count: int, streamed: bool, first_token: float) -> float:
    gate = asyncio.Semaphore(32)

    async def one() -> None:
        async with gate:
            response = Response(id=new_id("resp"), created_at=int(time.time()), model="m")
            rows = [ItemRow(response.id, "output", 0, new_id("msg"), BODY)]
            begun = store.begin(response, BODY, Tenant("proj_default")) if streamed else None
            await asyncio.sleep(first_token)
            if begun is not None:
                await begun
            await store.save(msgspec.structs.replace(response, status="completed"), BODY, Tenant("proj_default"), rows, replaces=streamed)

    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(count)))
    return (time.process_time() - started) / count * 1e6


async def lone(store: Store, count: int) -> tuple[float, float]:
    """p50 µs of one `save` awaited at a time, and of one empty write."""
    saves, empties = [], []
    for _ in range(count):
        response = Response(id=new_id("resp"), created_at=int(time.time()), model="m", status="completed")
        rows = [ItemRow(response.id, "input", 0, new_id("msg"), BODY), ItemRow(response.id, "output", 0, new_id("msg"), BODY)]
        started = time.perf_counter()
        await store.save(response, BODY, Tenant("proj_default"), rows)
        saves.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.write(lambda conn: None)
        empties.append(time.perf_counter() - started)
    return statistics.median(saves) * 1e6, statistics.median(empties) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--postgres", metavar="URL", help="measure on PostgreSQL instead of a temporary SQLite file")
    args = parser.parse_args()
    url = args.postgres or f"sqlite:///{tempfile.mkdtemp(prefix='rejoinder-store-')}/bench.db"
    store = Store(url)
    store.migrate()
    try:
        asyncio.run(run(store, 500, False, 0))  # warm-up
        print(f"\nStore: {url.split(':')[0]}, 32 responses in flight, {args.count} per run, best of 3, CPU µs per response")
        print(f"{'first token after':<18} {'final write only':>17} {'streamed (both)':>16} {'in-progress record':>19}")
        for first_token in (0.0, 0.02):
            plain = min(asyncio.run(run(store, args.count, False, first_token)) for _ in range(3))
            streamed = min(asyncio.run(run(store, args.count, True, first_token)) for _ in range(3))
            print(f"{f'{first_token * 1000:.0f} ms':<18} {plain:>17.0f} {streamed:>16.0f} {streamed - plain:>+19.0f}")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            saved, empty = runner.run(lone(store, args.count))
        print(f"\nOne at a time, p50 wall µs: save {saved:.0f}, an empty write {empty:.0f} (the hops), the rows and their commit {saved - empty:.0f}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
