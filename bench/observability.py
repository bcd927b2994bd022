"""Benchmark: what observability costs a request, in-process (no network noise): the metrics of
one answered response request (`Metrics.turn`), a request id, and one JSON access-log line.

    python bench/observability.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import logging
import time
from types import SimpleNamespace

from harness import finished_run  # bench/ is on the path: this script's folder

from rejoinder.api.observe import AccessLog, Metrics
from rejoinder.api.usage import Tally
from rejoinder.engine.access.limits import Limiter
from rejoinder.protocol.ids import new_id


def per_call(count: int, action) -> float:
    started = time.process_time()
    for _ in range(count):
        action()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    metrics = Metrics(Tally(None), Limiter(None))  # counted in memory; never flushed here
    now = time.monotonic()
    run = finished_run()
    logger = logging.getLogger("bench.access")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    access = AccessLog(logger, "")
    request = _Request("POST", "/v1/responses", {"request_id": "req_1", "mode": "json", "run": run})
    answer = SimpleNamespace(status=200, body_length=512)
    turn = per_call(args.requests, lambda: metrics.turn("json", 200, now, run, None))
    ident = per_call(args.requests, lambda: new_id("req"))
    line = per_call(args.requests // 10, lambda: access.log(request, answer, 0.002))
    print(f"metrics and usage counts of one response request: {turn:.1f} µs CPU")
    print(f"a request id: {ident:.1f} µs")
    print(f"one JSON access-log line (when --access-log is on): {line:.1f} µs")
    print(f"together (metrics and id, always on): {turn + ident:.1f} µs a request")


class _Request(dict):
    """What the access logger reads of a request: its mapping, method and path."""

    def __init__(self, method: str, path: str, values: dict) -> None:
        super().__init__(values)
        self.method, self.path = method, path


if __name__ == "__main__":
    main()
