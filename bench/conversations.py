"""Benchmark: what a conversation's history costs a turn.

Prints the gateway's CPU time per non-streaming turn (`conversation` set, SQLite, the test
suite's fake Chat Completions upstream on 127.0.0.1) on a conversation of 2,000 items next to a
turn on an empty one (a new conversation each turn; the creations' own CPU, measured alone, is
taken off), and the latency of an item page (`GET …/items?limit=20`) far into the history.

    python bench/conversations.py [--turns 200] [--items 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from harness import cpu_seconds, gateway_on_fake  # bench/ is on the path: this script's folder


def call(url: str, body: dict | None = None, method: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method or ("POST" if data else "GET"))
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def cpu_per(pid: int, count: int, action) -> float:
    before = cpu_seconds([pid])
    for _ in range(count):
        action()
    return (cpu_seconds([pid]) - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    with gateway_on_fake() as (gateway, _):
        base, pid = gateway.url + "/v1", gateway.process.pid
        long = call(base + "/conversations", {})["id"]
        for start in range(0, args.items, 20):
            call(f"{base}/conversations/{long}/items", {"items": [{"role": "user", "content": f"message {n} " * 8} for n in range(start, start + 20)]})
        turn = {"model": "mock-text", "input": "Next?"}
        for _ in range(20):  # warm up
            call(base + "/responses", {**turn, "conversation": long})
            call(base + "/responses", {**turn, "conversation": call(base + "/conversations", {})["id"]})
        creations = cpu_per(pid, args.turns, lambda: call(base + "/conversations", {}))
        empty = cpu_per(pid, args.turns, lambda: call(base + "/responses", {**turn, "conversation": call(base + "/conversations", {})["id"]})) - creations
        history = cpu_per(pid, args.turns, lambda: call(base + "/responses", {**turn, "conversation": long}))
        mean_items = args.items + 40 + args.turns  # each turn adds two: warm-up, then half the measured turns on average
        per = (history - empty) * 1e3 * args.items / mean_items
        print(f"gateway CPU per turn: empty conversation {empty * 1e3:.2f} ms, {mean_items:,} items on average {history * 1e3:.2f} ms")
        print(f"a turn on {args.items:,} items costs {per:.2f} ms more than one on an empty conversation (scaled from the average)")
        page = call(f"{base}/conversations/{long}/items?limit=20&order=asc")
        cursor = page["data"][-1]["id"]
        middle = call(f"{base}/conversations/{long}/items?limit=100&order=asc&after={cursor}")["data"][-1]["id"]
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            call(f"{base}/conversations/{long}/items?limit=20&after={middle}")
            samples.append(time.perf_counter() - started)
        print(f"an item page far into the history: p50 {statistics.median(samples) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
