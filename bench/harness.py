"""What the benchmarks share: a process's CPU time and RSS from /proc, and a gateway on a
temporary SQLite file in front of the test suite's fake Chat Completions server (everything on
127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

TESTS = Path(__file__).resolve().parents[1] / "tests"


def finished_run() -> SimpleNamespace:
    """What the metrics read of a run that has just ended (for the in-process benches)."""
    from rejoinder.engine.router import Deployment
    from rejoinder.engine.skeleton import usage
    from rejoinder.protocol.response import Response
    from rejoinder.providers.base import Usage

    now = time.monotonic()
    used = Usage(input_tokens=10, output_tokens=5)
    return SimpleNamespace(
        deployment=Deployment("mock-text", None, "text", "openai-chat", None, None, "mock-*"),
        retries=0,
        called_at=now,
        first_at=now + 0.001,
        response=Response(id="resp_1", status="completed", usage=usage(used)),
        used=used,
    )


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / ticks


def rss_mb(pids: list[int]) -> float:
    return sum(int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)) for pid in pids) / 1024


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new database on the PostgreSQL at 127.0.0.1:5432 (as the test suite makes
    one), dropped afterwards."""
    sys.path.insert(0, str(TESTS))
    from conftest import _database

    with _database() as url:
        yield url


@contextlib.contextmanager
def gateway_on_fake(**config: Any) -> Iterator[tuple[Any, Any]]:
    """`(gateway, fake upstream)`: the test suite's `chat_models` on the fake, `config` added."""
    sys.path.insert(0, str(TESTS))
    from conftest import chat_models
    from fake_chat import FakeChat
    from gateway import Gateway

    fake = FakeChat()
    fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="rejoinder-bench-") as workdir:
            gateway = Gateway({"models": chat_models(fake), "database_url": f"sqlite:///{workdir}/r.db", **config}, Path(workdir)).start()
            try:
                yield gateway, fake
            finally:
                gateway.stop()
    finally:
        fake.stop()
