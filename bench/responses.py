"""Benchmark: POST /v1/responses through the gateway against a canned nginx upstream.

Prints, for non-streaming and streaming requests with `store: true` (the default):
requests per second at concurrency 32, latency p50/p99 at concurrency 1 through the gateway and
straight to the upstream (the difference is what the gateway adds), the gateway's CPU time per
request, and its resident memory.

Needs nginx and wrk (Debian: `apt-get install nginx-light wrk`). Everything binds to 127.0.0.1
and is stopped by process id when the script ends.

    python bench/responses.py [--duration 10] [--workers 1] [--no-store]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import cpu_seconds, rss_mb  # bench/ is on the path: this script's folder

COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 9,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]


def sse_body() -> str:
    def chunk(choices: list, usage=None) -> str:
        return (
            "data: "
            + json.dumps(
                {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "bench", "choices": choices, "usage": usage},
                separators=(",", ":"),
            )
            + "\n\n"
        )

    out = chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    out += "".join(chunk([{"index": 0, "delta": {"content": w}, "finish_reason": None}]) for w in WORDS)
    out += chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    out += chunk([], COMPLETION["usage"])
    return out + "data: [DONE]\n\n"


def nginx_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited early with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start")


def wrk(url: str, body: dict, connections: int, seconds: int, work: Path, latency: bool = False) -> dict:
    script = work / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\nwrk.headers["Content-Type"] = "application/json"\n')
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    if latency:
        command.insert(1, "--latency")
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit("requests failed during the benchmark:\n" + out)
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    if latency:
        for pct in ("50", "99"):
            value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
            result[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return result


def gateway_pids(parent: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    return [int(c) for c in children] or [parent.pid]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-store", dest="store", action="store_false", help="send store: false, to see what storage costs")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is needed: apt-get install nginx-light wrk")

    work = Path(tempfile.mkdtemp(prefix="rejoinder-bench-"))
    upstream_port, gateway_port = free_port(), free_port()
    (work / "nginx.conf").write_text(
        f"""
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; keepalive_requests 1000000; client_body_buffer_size 64k;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{
    listen 127.0.0.1:{upstream_port};
    location /json/v1/chat/completions {{ default_type application/json; return 200 {nginx_quote(json.dumps(COMPLETION))}; }}
    location /sse/v1/chat/completions {{ default_type text/event-stream; return 200 {nginx_quote(sse_body())}; }}
  }}
}}
"""
    )
    upstream = f"http://127.0.0.1:{upstream_port}"
    (work / "rejoinder.yaml").write_text(
        f"models:\n"
        f"  - {{name: bench-json, provider: openai-chat, base_url: {upstream}/json/v1, upstream_model: bench}}\n"
        f"  - {{name: bench-sse, provider: openai-chat, base_url: {upstream}/sse/v1, upstream_model: bench}}\n"
        f"database_url: sqlite:///{work}/bench.db\n"
    )
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    nginx = subprocess.Popen([nginx_bin, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.DEVNULL)
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rejoinder",
            "serve",
            "--config",
            str(work / "rejoinder.yaml"),
            "--port",
            str(gateway_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=work,
        stderr=open(work / "gateway.log", "w"),
    )
    try:
        wait_for(upstream + "/json/v1/chat/completions", nginx, "nginx")
        wait_for(f"http://127.0.0.1:{gateway_port}/health", gateway, "gateway")
        gateway_url = f"http://127.0.0.1:{gateway_port}/v1/responses"
        pids = gateway_pids(gateway)
        rows = []
        for mode, model, direct_path, stream in (
            ("non-streaming", "bench-json", "/json/v1/chat/completions", False),
            ("streaming", "bench-sse", "/sse/v1/chat/completions", True),
        ):
            body = {"model": model, "input": "Hello", "store": args.store, "stream": stream}
            direct_body = {"model": "bench", "messages": [{"role": "user", "content": "Hello"}], "stream": stream}
            wrk(gateway_url, body, 8, 2, work)  # warm-up
            cpu_before = cpu_seconds(pids)
            load = wrk(gateway_url, body, 32, args.duration, work)
            cpu_per_request_us = (cpu_seconds(pids) - cpu_before) / load["requests"] * 1e6
            through = wrk(gateway_url, body, 1, max(5, args.duration // 2), work, latency=True)
            direct = wrk(upstream + direct_path, direct_body, 1, max(5, args.duration // 2), work, latency=True)
            rows.append((mode, load["rps"], through["p50"], through["p99"], direct["p50"], direct["p99"], cpu_per_request_us))
        rss = rss_mb(pids)
        print(
            f"\nRejoinder benchmark: {args.workers} worker(s), store: {str(args.store).lower()} on SQLite, canned nginx upstream, wrk on loopback, {os.cpu_count()} cores"
        )
        print(
            f"{'mode':<14} {'req/s @c32':>11} {'p50 ms':>8} {'p99 ms':>8} {'direct p50':>11} {'direct p99':>11} {'added p50':>10} {'added p99':>10} {'CPU µs/req':>11}"
        )
        for mode, rps, p50, p99, d50, d99, cpu in rows:
            print(f"{mode:<14} {rps:>11.0f} {p50:>8.3f} {p99:>8.3f} {d50:>11.3f} {d99:>11.3f} {p50 - d50:>10.3f} {p99 - d99:>10.3f} {cpu:>11.0f}")
        print(f"gateway RSS after the runs: {rss:.1f} MB")
    finally:
        for process in (gateway, nginx):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
