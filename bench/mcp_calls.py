"""Benchmark: what an MCP call run by the gateway costs beyond the MCP server's own time.

A real MCP server from the `mcp` package (tests/mcp_server.py) and a gateway on the test suite's
fake Chat Completions upstream, all on 127.0.0.1. Prints p50 latencies of:
- A: a response whose model calls `add` once, then answers (its listing reused through
  `previous_response_id`, so one session, one call and two model turns);
- B: the same response whose model answers at once (one model turn, the same tools offered);
- D: the SDK alone opening a session and calling `add`, with the gateway's TLS context (the
  MCP server's time and the SDK's, which a response with one call spends);
- U: one model turn asked of the fake upstream directly (the second turn A makes);
and the gateway's own cost per call, estimated as A − B − D − U.

    python bench/mcp_calls.py [--responses 200]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time

import httpx2 as httpx
from harness import TESTS, gateway_on_fake  # bench/ is on the path: this script's folder
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from rejoinder.engine.tools.mcp.guarded_http import tls


def serve_mcp() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(TESTS / "mcp_server.py"), str(port)])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}"


async def direct(url: str) -> float:
    started = time.perf_counter()
    async with Client(streamable_http_client(url + "/mcp", http_client=httpx.AsyncClient(verify=tls()))) as client:
        await client.call_tool("add", {"a": 2, "b": 3})
        return time.perf_counter() - started  # the session's close is not counted: the gateway does not wait for it


def timed(post, body: dict) -> float:
    started = time.perf_counter()
    answer = post(body)
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=200)
    args = parser.parse_args()
    process, server = serve_mcp()
    loop = asyncio.new_event_loop()
    samples: dict[str, list[float]] = {"A": [], "B": [], "D": [], "U": []}
    try:
        with gateway_on_fake(mcp_allow_hosts=[server.removeprefix("http://")]) as (gateway, fake):
            http = httpx.Client(base_url=gateway.url, timeout=60)
            tool = {"type": "mcp", "server_label": "docs", "server_url": server + "/mcp", "require_approval": "never"}
            first = http.post("/v1/responses", json={"model": "mock-text", "input": "Hi", "tools": [tool]}).json()  # lists once

            def post(body: dict) -> httpx.Response:
                return http.post("/v1/responses", json={**body, "previous_response_id": first["id"], "store": False})

            turn = {"model": "mcp-add", "messages": [{"role": "user", "content": "2 + 3?"}, {"role": "tool", "tool_call_id": "c", "content": "5"}]}
            for _ in range(args.responses):  # interleaved, so that a slower moment of the machine weighs on every figure alike
                samples["A"].append(timed(post, {"model": "mock-mcp-add", "input": "2 + 3?", "tools": [tool]}))
                samples["B"].append(timed(post, {"model": "mock-text", "input": "Hi", "tools": [tool]}))
                samples["D"].append(loop.run_until_complete(direct(server)))
                samples["U"].append(timed(lambda body: http.post(fake.url + "/v1/chat/completions", json=body), turn))
    finally:
        loop.close()
        process.terminate()
        process.wait(10)
    a, b, d, u = (statistics.median(samples[name]) * 1000 for name in "ABDU")
    print(f"A  response with one MCP call         {a:7.2f} ms p50")
    print(f"B  same response, no call             {b:7.2f} ms p50")
    print(f"D  SDK alone: new session + call      {d:7.2f} ms p50")
    print(f"U  one upstream model turn            {u:7.2f} ms p50")
    print(f"gateway's own cost per MCP call (A − B − D − U): {a - b - d - u:.2f} ms")


if __name__ == "__main__":
    main()
