"""A template worker: the program the cage (`engine.templating.cage`) runs and talks to over
its pipes. It limits itself first (memory, priority; CPU time before each render), then renders
each job it reads until its input closes, which happens when the gateway goes away.

It imports no more than the sandbox needs, so it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import math
import os
import resource
import sys

import orjson

from rejoinder.engine.templating.cage import DEADLINE, HEADER, MEMORY_BYTES, NICENESS
from rejoinder.engine.templating.sandbox import render_template
from rejoinder.protocol.errors import ApiError


def _serve() -> None:
    """A worker's life: limit itself, then render each job it reads until its input closes."""
    os.nice(NICENESS)
    with open("/proc/self/statm") as statm:
        _limit(resource.RLIMIT_AS, int(statm.read().split()[0]) * resource.getpagesize() + MEMORY_BYTES)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while header := source.read(HEADER.size):
        template, texts, parts = orjson.loads(source.read(HEADER.unpack(header)[0]))
        used = resource.getrusage(resource.RUSAGE_SELF)  # CPU time: this render's, then SIGXCPU ends the worker
        _limit(resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime + DEADLINE + 1))
        try:
            reply = {"ok": render_template(template, texts, parts)}
        except ApiError as exc:
            reply = {"error": {"message": exc.message, "param": exc.param, "code": exc.code}}
        answer = orjson.dumps(reply)
        sink.write(HEADER.pack(len(answer)) + answer)
        sink.flush()


def _limit(which: int, soft: int) -> None:
    """Set a resource's soft limit to `soft`, or to its hard limit where that is lower."""
    _, hard = resource.getrlimit(which)
    resource.setrlimit(which, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


if __name__ == "__main__":
    _serve()
