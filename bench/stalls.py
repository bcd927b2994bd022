"""Ordinary traffic while a hostile key holder tries to stall the gateway.

Measures the latency of ordinary requests (non-streaming `POST /v1/responses`, one at a time
from each of two clients) first on a quiet gateway, then while attackers run beside them, each
in its own process: the worst prompt templates (a minute-long big-integer power, a gigabyte
`replace`) through the console's preview, bodies that stop arriving and bodies that declare a
terabyte, a dripping upstream and 500 slow-loris connections; on request, 100,000-item inputs
too. Prints p50 and p99 of both phases, their ratio (the goal: p99 within 2x of quiet) and
what the attacks got.

    python bench/stalls.py [--duration 10] [--attacks templates,drips,...]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_chat import FakeChat  # noqa: E402
from gateway import Gateway  # noqa: E402

ORDINARY = json.dumps({"model": "chat", "input": "hi"}).encode()
TEMPLATES = ["{{ ((7 ** 4096) ** 4096) is number }}", "{{ ('x'*999999)|replace('x','y'*1000)|length }}"]
BIG_INPUT = json.dumps({"model": "chat", "input": [{"role": "user", "content": f"item {i}"} for i in range(100_000)]}).encode()


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    return answer.status, answer.read()


def ordinary(port: int, until: float, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < until:
        started = time.monotonic()
        status, _ = _post(connection, "/v1/responses", ORDINARY)
        assert status == 200, status
        latencies.append(time.monotonic() - started)


def _templates(port: int, until: float, seen: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(10**9):
        if time.monotonic() >= until:
            return
        body = json.dumps({"template": {"model": "m", "instructions": TEMPLATES[i % 2]}, "variables": {}}).encode()
        status, raw = _post(connection, "/v1/console/prompts/preview", body)
        seen[f"template {status} {json.loads(raw)['error']['code'] if status >= 400 else ''}"] += 1


def _slow_bodies(port: int, until: float, seen: dict) -> None:
    while time.monotonic() < until:
        for length in (100, 999999999999):
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{".encode())
                head = sock.recv(65536).split(b"\r\n", 1)[0]
                seen[f"stopped body (Content-Length {length}): {head.decode()}"] += 1


def _drips(port: int, until: float, seen: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < until:
        status, raw = _post(connection, "/v1/responses", json.dumps({"model": "drip", "input": "x", "stream": True}).encode())
        seen[f"dripping upstream {status} {'response.failed' if b'response.failed' in raw else ''}"] += 1


def _slow_loris(port: int, until: float, seen: dict) -> None:
    held = []
    for _ in range(500):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")
        held.append(sock)
    seen["slow-loris connections held"] = len(held)
    time.sleep(max(0.0, until - time.monotonic()))
    for sock in held:
        sock.close()


def _big_inputs(port: int, until: float, seen: dict) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < until:
        status, _ = _post(connection, "/v1/responses", BIG_INPUT)
        seen[f"100,000-item input {status}"] += 1


ATTACKS = {"templates": _templates, "slow-bodies": _slow_bodies, "drips": _drips, "slow-loris": _slow_loris, "big-inputs": _big_inputs}
# What stalled the gateway before issue 23; big inputs are CPU a client buys with bandwidth, not
# a stall, and are measured on their own (`--attacks big-inputs`).
DEFAULT = "templates,slow-bodies,drips,slow-loris"


def _attacker(kind: str, port: int, until: float, results: multiprocessing.Queue) -> None:
    seen: Counter = Counter()
    try:
        ATTACKS[kind](port, until, seen)
    except Exception as exc:  # an attacker's own failure is a figure too
        seen[f"{kind} stopped: {type(exc).__name__}: {exc}"] += 1
    results.put(dict(seen))


def phase(port: int, duration: float, attacks: list[str]) -> tuple[list[float], Counter]:
    until = time.monotonic() + duration
    results: multiprocessing.Queue = multiprocessing.Queue()
    attackers = [multiprocessing.Process(target=_attacker, args=(kind, port, until + 2, results)) for kind in attacks]
    for process in attackers:
        process.start()
    if attacks:
        time.sleep(1)  # the attacks under way before ordinary traffic is timed
        until = time.monotonic() + duration
    latencies: list[float] = []
    clients = [threading.Thread(target=ordinary, args=(port, until, latencies)) for _ in range(2)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    seen: Counter = Counter()
    for _ in attackers:
        seen.update(results.get(timeout=120))
    for process in attackers:
        process.join()
    return latencies, seen


def _percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of ordinary traffic per phase")
    parser.add_argument("--attacks", default=DEFAULT, help=f"which attacks, comma-separated, of: {', '.join(ATTACKS)} (default: {DEFAULT})")
    args = parser.parse_args()
    fake = FakeChat()
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="rejoinder-bench-") as workdir:
            base = fake.url + "/v1"
            models = [
                {"name": "chat", "provider": "openai-chat", "base_url": base, "upstream_model": "text"},
                {"name": "drip", "provider": "openai-chat", "base_url": base, "upstream_model": "drip-after-first", "first_event_timeout": 30, "timeout": 2},
            ]
            gw = Gateway({"models": models, "database_url": f"sqlite:///{workdir}/r.db", "client_timeout": 5}, Path(workdir)).start()
            try:
                phase(gw.port, 2, [])  # warm-up
                quiet, _ = phase(gw.port, args.duration, [])
                attacked, seen = phase(gw.port, args.duration, args.attacks.split(","))
            finally:
                gw.stop()
    finally:
        fake.stop()
    print(f"ordinary requests, 2 clients, {args.duration:g} s a phase")
    print(f"{'':>10} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("quiet", quiet), ("attacked", attacked)):
        print(f"{name:>10} {len(values):>9} {statistics.median(values) * 1000:>8.2f} {_percentile(values, 0.99):>8.2f} {max(values) * 1000:>8.1f}")
    print(f"p99 attacked / quiet: {_percentile(attacked, 0.99) / _percentile(quiet, 0.99):.2f}x (goal: at most 2x)")
    print("what the attacks got:")
    for what, count in sorted(seen.items()):
        print(f"  {count:>6}  {what}")


if __name__ == "__main__":
    main()
