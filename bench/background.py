"""Benchmark: background runs.

Prints, for one gateway on SQLite (and on PostgreSQL with --postgres URL, plus Redis with
--redis URL):
- the latency (p50/p99, concurrency 1) of a background POST, alone (its run waits on a slow
  upstream) and with each run ending alongside the next POST (the run's own work shares the
  event loop), next to a foreground non-streaming POST to an instant upstream and to
  `GET /v1/responses/{id}` (the floor of any request);
- how soon a resumed stream (`?stream=true&starting_after=N`) shows its first event, on a
  finished run and on a live one;
- 1,000 background runs queued at once against an upstream that answers each in 100 ms:
  the time they take to drain next to the ideal (runs / max_concurrent x 0.1 s), and the
  gateway's RSS while they drain.
Uses the test suite's fake Chat Completions server; everything binds to 127.0.0.1.

    python bench/background.py [--requests 2000] [--runs 1000] [--postgres URL] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import chat_models  # noqa: E402
from fake_chat import FakeChat  # noqa: E402
from gateway import Gateway  # noqa: E402
from harness import rss_mb  # noqa: E402  (bench/ is on the path: this script's folder)

MAX_CONCURRENT = 16


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    return f"p50 {statistics.median(samples) * 1000:6.2f} ms   p99 {samples[int(len(samples) * 0.99)] * 1000:6.2f} ms"


async def timed(session: aiohttp.ClientSession, method: str, url: str, body: dict | None = None) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with session.request(method, url, json=body) as response:
        raw = await response.read()
        assert response.status == 200, raw
    return time.perf_counter() - started, raw


async def first_event(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.content.readuntil(b"\n\n")
        elapsed = time.perf_counter() - started
        response.close()
    return elapsed


async def latencies(base: str, requests: int) -> None:
    async with aiohttp.ClientSession() as session:
        posts = {
            "background POST, runs wait": {"model": "mock-late", "input": "Hi", "background": True},  # their upstream answers in 3 s
            "background POST, runs end": {"model": "mock-text", "input": "Hi", "background": True},  # each run ends alongside the next POST
            "foreground POST": {"model": "mock-text", "input": "Hi"},
        }
        ids = []
        for _ in range(50):  # warm up
            for body in posts.values():
                await timed(session, "POST", base + "/v1/responses", body)
        for name, body in posts.items():
            samples, made = [], []
            for _ in range(requests):
                elapsed, raw = await timed(session, "POST", base + "/v1/responses", body)
                samples.append(elapsed)
                made.append(json.loads(raw)["id"])
            print(f"  {name:28} {percentiles(samples)}")
            if name == "background POST, runs wait":  # out of the way of the rows after
                for response_id in made:
                    await timed(session, "POST", f"{base}/v1/responses/{response_id}/cancel")
            if name == "background POST, runs end":
                ids = made[:200]
                while json.loads((await timed(session, "GET", f"{base}/v1/responses/{made[-1]}"))[1])["status"] != "completed":
                    await asyncio.sleep(0.2)  # the rows after measure a gateway at rest
        samples = [(await timed(session, "GET", f"{base}/v1/responses/{ids[i % len(ids)]}"))[0] for i in range(requests)]
        print(f"  {'GET /v1/responses/{id}':28} {percentiles(samples)}")
        samples = [await first_event(session, f"{base}/v1/responses/{ids[i % len(ids)]}?stream=true&starting_after=1") for i in range(200)]
        print(f"  {'resume, finished run':28} {percentiles(samples)}   (to the first event)")
        samples = []
        for _ in range(50):
            _, raw = await timed(session, "POST", base + "/v1/responses", {"model": "mock-paced", "input": "Hi", "background": True})
            response_id = json.loads(raw)["id"]
            await asyncio.sleep(0.3)
            samples.append(await first_event(session, f"{base}/v1/responses/{response_id}?stream=true&starting_after=3"))
        print(f"  {'resume, live run':28} {percentiles(samples)}   (to the first event)")


async def drain(base: str, pid: int, runs: int) -> None:
    async with aiohttp.ClientSession() as session:
        rss = [rss_mb([pid])]
        started = time.monotonic()
        ids = []
        for i in range(runs):
            _, raw = await timed(session, "POST", base + "/v1/responses", {"model": "mock-tenth", "input": f"run {i}", "background": True})
            ids.append(json.loads(raw)["id"])
        queued = time.monotonic() - started
        last = ids[-1]
        while True:
            rss.append(rss_mb([pid]))
            _, raw = await timed(session, "GET", f"{base}/v1/responses/{last}")
            if json.loads(raw)["status"] == "completed":
                break
            await asyncio.sleep(0.5)
        took = time.monotonic() - started
        ideal = runs / MAX_CONCURRENT * 0.1
        print(f"  {runs} runs queued in {queued:.1f} s, drained in {took:.1f} s (ideal {ideal:.1f} s at {MAX_CONCURRENT} at a time, 100 ms each)")
        print(f"  RSS while draining: start {rss[0]:.0f} MB, max {max(rss):.0f} MB, end {rss[-1]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (it must be empty)")
    parser.add_argument("--redis", help="with --postgres, fan out through this Redis")
    args = parser.parse_args()
    fake = FakeChat()
    fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="rejoinder-background-"))
    backends = [("SQLite", f"sqlite:///{workdir}/r.db", None)]
    if args.postgres:
        backends.append(("PostgreSQL" + (" + Redis" if args.redis else ""), args.postgres, args.redis))
    try:
        for name, url, redis_url in backends:
            config = {"models": chat_models(fake), "database_url": url, "background": {"max_concurrent": MAX_CONCURRENT}}
            if redis_url:
                config["redis_url"] = redis_url
            gw = Gateway(config, workdir).start()
            try:
                print(f"\n{name}")
                asyncio.run(latencies(gw.url, args.requests))
                asyncio.run(drain(gw.url, gw.process.pid, args.runs))
            finally:
                gw.stop()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
