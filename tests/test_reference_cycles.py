"""A request's objects die by reference counting, not by the garbage collector.

An object graph with a cycle (a run whose builder's event sink closes over the run, say) outlives
its request until a collection finds it, and that collection pauses the event loop for
milliseconds: it was a stream's p99 at concurrency 1 (4-5 ms once in every ~360 requests, see
`bench/responses.py`). The gateway runs with `collector_probe/` on its path, which on SIGUSR2
runs a full collection and says how many unreachable objects it found: requests of each kind,
between two such collections, must leave next to none.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import chat_models, sdk
from gateway import Gateway
from helpers import create, stream, wait_until
from sockets import Socket

WEATHER = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
PROBE = Path(__file__).with_name("collector_probe")


@pytest.fixture(scope="module")
def probed(fake_chat, tmp_path_factory):
    """A gateway of its own with the collector probe, and how to ask it for a full collection."""
    workdir = tmp_path_factory.mktemp("cycles")
    out = workdir / "collected"
    env = {"PYTHONPATH": os.pathsep.join([str(PROBE), os.environ.get("PYTHONPATH", "")]), "COLLECTOR_PROBE_OUT": str(out)}
    gw = Gateway({"models": chat_models(fake_chat), "database_url": f"sqlite:///{workdir}/r.db"}, workdir, env=env).start()

    def unreachable() -> int:
        out.unlink(missing_ok=True)
        os.kill(gw.process.pid, signal.SIGUSR2)
        assert wait_until(out.exists), "the probe did not answer"
        return int(out.read_text())

    yield gw, unreachable
    gw.stop()


@pytest.mark.parametrize(
    ("kind", "repeats"),
    [("json", 40), ("stream", 40), ("stream-tool-call", 40), ("stream-paced-chain", 3), ("chain-deleted", 10), ("background", 10), ("websocket-turns", 20)],
)
def test_requests_leave_no_reference_cycles(probed, kind, repeats):
    gw, unreachable = probed
    client = sdk(gw)
    previous = create(client, model="mock-text", input="Hi")["id"]
    # aiohttp's own WebSocket objects form cycles, once per connection: the turns share one
    socket = Socket(client) if kind == "websocket-turns" else None
    unreachable()
    for _ in range(repeats):
        if kind == "json":
            create(client, model="mock-text", input="Hi")
        elif kind == "stream":
            stream(client, model="mock-text", input="Hi")
        elif kind == "stream-tool-call":
            stream(client, model="mock-call-weather", input="Weather?", tools=WEATHER)
        elif kind == "stream-paced-chain":  # several flushes, an in-progress record, a chain read back
            stream(client, model="mock-paced", input="Go on", previous_response_id=previous)
        elif kind == "stream-left-by-client":  # the client leaves after the first event: kept as cancelled
            with client.responses.create(model="mock-paced", input="Go on", stream=True) as events:
                next(iter(events))
        elif kind == "background":  # queued, claimed, run, its log replayed to the stream
            list(client.responses.create(model="mock-text", input="Hi", background=True, stream=True))
        elif kind == "websocket-turns":
            socket.turn(model="mock-text", input="Hi")  # type: ignore[union-attr]
        else:  # an error answered in the envelope (the chain's head is gone)
            gone = create(client, model="mock-text", input="Hi")["id"]
            client.responses.delete(gone)
            with pytest.raises(Exception):
                create(client, model="mock-text", input="Hi", previous_response_id=gone)
    found = unreachable()
    if socket is not None:
        socket.close()
    assert found < repeats, f"{found} objects left by {repeats} {kind} requests were freed only by the garbage collector"
