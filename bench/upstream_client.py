"""What one upstream call costs the gateway's process: CPU per call of aiohttp's client (what the
gateway used before) and of `providers.http.Upstream` on `providers.client`, interleaved,
against the canned nginx upstream of `bench/responses.py` (on 127.0.0.1), one call at a time
on a kept-alive connection, in this process on uvloop. A whole JSON body, then a stream of
server-sent events read to its end.

    python bench/upstream_client.py [--calls 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import aiohttp
import uvloop
from responses import bench_gateway  # bench/ is on the path: this script's folder

from rejoinder.providers.http import Upstream, UpstreamLimits, close_session

BODY = b'{"model":"bench","messages":[{"role":"user","content":"Hi"}],"stream":true}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-0123456789abcdef"}


class _Drain:
    done = False

    def finish(self) -> list:
        return []


async def with_aiohttp(url: str, stream: bool, calls: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()) as session:
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=600)

        async def one() -> None:
            async with session.post(url, data=BODY, headers=HEADERS, timeout=timeout) as response:
                if stream:
                    while await response.content.readany():
                        pass
                else:
                    await response.read()

        return await _timed(one, calls)


async def with_upstream(url: str, stream: bool, calls: int) -> float:
    upstream = Upstream(HEADERS, None, UpstreamLimits())

    async def one() -> None:
        async with upstream.call(url, BODY, stream) as reply:
            if stream:
                async for _ in reply.deltas(lambda data: [data], _Drain()):
                    pass
            else:
                await reply.body()

    try:
        return await _timed(one, calls)
    finally:
        await close_session()


async def _timed(one, calls: int) -> float:  # noqa: ANN001
    for _ in range(200):  # warm: the connection made, caches filled
        await one()
    started = time.process_time()
    for _ in range(calls):
        await one()
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_gateway(key=False) as gateway:
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for kind, stream in (("json", False), ("sse", True)):
                url = f"{gateway.upstream}/{kind}/v1/chat/completions"
                for name, run in (("aiohttp", with_aiohttp), ("providers.client", with_upstream)):
                    results.setdefault((kind, name), []).append(uvloop.run(run(url, stream, args.calls)))
    print(f"CPU µs per upstream call (median of {args.rounds} rounds of {args.calls})")
    for (kind, name), samples in results.items():
        print(f"  {kind:5} {name:17} {statistics.median(samples):7.1f}   ({', '.join(f'{s:.0f}' for s in samples)})")


if __name__ == "__main__":
    main()
