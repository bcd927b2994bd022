"""Benchmark: WebSocket mode next to HTTP.

Prints, for one gateway on SQLite with the test suite's fake Chat Completions upstream (all on
127.0.0.1):
- the same streamed turn, one at a time, over HTTP with keep-alive (`POST /v1/responses`,
  `stream: true`, read to `[response.completed]`) and over one open socket (`response.create`,
  read to its `response.completed` frame): latency p50/p99 at the client, and the gateway's
  CPU time per turn (from /proc), with `store` true and false; and a chained store-free turn
  (`previous_response_id` over the socket, where HTTP cannot go without storing);
- the gateway's RSS for idle sockets: 1,000 sockets opened and left idle, then the same after
  each ran one store-free turn (which it then remembers), per socket.

    python bench/websocket.py [--turns 2000] [--sockets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

import aiohttp
from harness import cpu_seconds, gateway_on_fake, rss_mb  # bench/ is on the path: this script's folder

TURN = {"model": "mock-text", "input": "Say hello."}


def row(name: str, samples: list[float], cpu: float) -> str:
    samples = sorted(samples)
    p50, p99 = statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000
    return f"{name:<34} {p50:>8.3f} {p99:>8.3f} {cpu / len(samples) * 1e6:>14.0f}"


async def over_http(session: aiohttp.ClientSession, url: str, turns: int, store: bool) -> list[float]:
    samples = []
    for _ in range(turns):
        started = time.perf_counter()
        async with session.post(url, json={**TURN, "stream": True, "store": store}) as response:
            async for line in response.content:
                if line.startswith(b"event: response.completed"):
                    break
            await response.read()
        samples.append(time.perf_counter() - started)
    return samples


async def over_socket(ws: aiohttp.ClientWebSocketResponse, turns: int, store: bool, chained: bool = False) -> list[float]:
    samples, previous = [], None
    for _ in range(turns):
        started = time.perf_counter()
        await ws.send_json({"type": "response.create", **TURN, "store": store, **({"previous_response_id": previous} if previous else {})})
        while True:
            message = await ws.receive()
            data = message.data
            if '"type":"response.completed"' in data:
                break
            assert '"type":"error"' not in data, data
        samples.append(time.perf_counter() - started)
        if chained:
            previous = data.split('"id":"', 1)[1].split('"', 1)[0]
    return samples


async def turns(base: str, pid: int, count: int) -> None:
    print(f"{'one turn at a time (' + str(count) + ' each)':<34} {'p50 ms':>8} {'p99 ms':>8} {'gateway CPU/turn µs':>14}")
    async with aiohttp.ClientSession() as session, session.ws_connect(base.replace("http", "ws") + "/v1/responses") as ws:
        await over_http(session, base + "/v1/responses", 200, True)  # warm both paths up
        await over_socket(ws, 200, True)
        for store in (True, False):
            for name, measure in (
                ("HTTP keep-alive, store " + str(store).lower(), lambda: over_http(session, base + "/v1/responses", count, store)),
                ("WebSocket, store " + str(store).lower(), lambda: over_socket(ws, count, store)),
            ):
                before = cpu_seconds([pid])
                samples = await measure()
                print(row(name, samples, cpu_seconds([pid]) - before))
        count_chained = min(count, 50)  # a chain's context grows with each turn: keep it short
        before = cpu_seconds([pid])
        samples = await over_socket(ws, count_chained, False, chained=True)
        print(row(f"WebSocket, store-free chain of {count_chained}", samples, cpu_seconds([pid]) - before))


async def idle_sockets(base: str, pid: int, count: int) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.sleep(0.5)
        before = rss_mb([pid])
        sockets = []
        for _ in range(count):
            sockets.append(await session.ws_connect(base.replace("http", "ws") + "/v1/responses", autoping=True))
        await asyncio.sleep(1)
        opened = rss_mb([pid])
        for ws in sockets:
            await over_socket(ws, 1, False)
        await asyncio.sleep(1)
        used = rss_mb([pid])
        print(f"\n{count} idle sockets: gateway RSS {before:.1f} MB -> {opened:.1f} MB = {(opened - before) * 1024 / count:.1f} KB a socket")
        print(f"after one store-free turn each (remembered): {used:.1f} MB = {(used - before) * 1024 / count:.1f} KB a socket")
        for ws in sockets:
            await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--sockets", type=int, default=1000)
    args = parser.parse_args()
    with gateway_on_fake() as (gateway, fake):
        pid = gateway.process.pid
        asyncio.run(turns(gateway.url, pid, args.turns))
        fake.requests.clear()
        gc.collect()
        asyncio.run(idle_sockets(gateway.url, pid, args.sockets))


if __name__ == "__main__":
    main()
