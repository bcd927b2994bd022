"""Benchmark: POST /v1/responses through the gateway against a canned nginx upstream.

Prints, for non-streaming and streaming requests with `store: true` (the default) and a master
key (as the gateway is deployed; `--no-key` for none):
requests per second at concurrency 32, latency p50/p99 at concurrency 1 through the gateway and
straight to the upstream (the difference is what the gateway adds), the gateway's CPU time per
request, and its resident memory.

Needs nginx and wrk (Debian: `apt-get install nginx-light wrk`). Everything binds to 127.0.0.1
and is stopped by process id when the script ends.

    python bench/responses.py [--duration 10] [--workers 1] [--no-store] [--no-key] [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from harness import cpu_seconds, fresh_database, rss_mb  # bench/ is on the path: this script's folder

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


MASTER_KEY = "sk-bench-master-key-0123456789abcdef"


def wrk(url: str, body: dict, connections: int, seconds: int, work: Path, latency: bool = False, key: str | None = None) -> dict:
    script = work / "post.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\nwrk.headers["Content-Type"] = "application/json"\n{auth}')
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


def loaded(gateway: SimpleNamespace, body: dict, seconds: int) -> tuple[dict, float]:
    """After a warm-up, `body` at concurrency 32 for `seconds`: wrk's figures, and the gateway's
    CPU per request in µs."""
    wrk(gateway.url, body, 8, 2, gateway.work, key=gateway.key)  # warm-up
    before = cpu_seconds(gateway.pids)
    load = wrk(gateway.url, body, 32, seconds, gateway.work, key=gateway.key)
    return load, (cpu_seconds(gateway.pids) - before) / load["requests"] * 1e6


def gateway_pids(parent: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    return [int(c) for c in children] or [parent.pid]


MODES = (  # (name, model, the upstream's path, stream)
    ("non-streaming", "bench-json", "/json/v1/chat/completions", False),
    ("streaming", "bench-sse", "/sse/v1/chat/completions", True),
)


@contextlib.contextmanager
def bench_gateway(workers: int = 1, key: bool = True, postgres: bool = False) -> Iterator[SimpleNamespace]:
    """nginx with the canned upstream and a gateway in front of it, both on 127.0.0.1, stopped
    by process id afterwards: `.url` (POST /v1/responses), `.upstream`, `.pids` (the gateway's
    workers), `.key` (its master key, or None), `.work` (a scratch folder)."""
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is needed: apt-get install nginx-light wrk")
    work = Path(tempfile.mkdtemp(prefix="rejoinder-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        database_url = stack.enter_context(fresh_database()) if postgres else f"sqlite:///{work}/bench.db"
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
            f"database_url: {database_url}\n" + (f"master_key: {MASTER_KEY}\n" if key else "")
        )
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = stack.enter_context(stopped(subprocess.Popen([nginx_bin, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.DEVNULL)))
        command = [sys.executable, "-m", "rejoinder", "serve", "--config", str(work / "rejoinder.yaml"), "--port", str(gateway_port)]
        command += ["--workers", str(workers), "--log-level", "warning"]
        gateway = stack.enter_context(stopped(subprocess.Popen(command, cwd=work, stderr=open(work / "gateway.log", "w"))))
        wait_for(upstream + "/json/v1/chat/completions", nginx, "nginx")
        wait_for(f"http://127.0.0.1:{gateway_port}/health", gateway, "gateway")
        yield SimpleNamespace(
            url=f"http://127.0.0.1:{gateway_port}/v1/responses", upstream=upstream, pids=gateway_pids(gateway), key=MASTER_KEY if key else None, work=work
        )


@contextlib.contextmanager
def stopped(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """`process`, terminated (then killed) when the block ends."""
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-store", dest="store", action="store_false", help="send store: false, to see what storage costs")
    parser.add_argument("--no-key", dest="key", action="store_false", help="a gateway without a master key")
    parser.add_argument("--postgres", action="store_true", help="store on a fresh database on the PostgreSQL at 127.0.0.1:5432 instead of SQLite")
    args = parser.parse_args()
    with bench_gateway(args.workers, args.key, args.postgres) as gateway:
        cpu_before, idle_from = cpu_seconds(gateway.pids), time.monotonic()
        time.sleep(5)
        idle = (cpu_seconds(gateway.pids) - cpu_before) / (time.monotonic() - idle_from) * 100
        rows = []
        for mode, model, direct_path, stream in MODES:
            body = {"model": model, "input": "Hello", "store": args.store, "stream": stream}
            direct_body = {"model": "bench", "messages": [{"role": "user", "content": "Hello"}], "stream": stream}
            load, cpu_per_request_us = loaded(gateway, body, args.duration)
            through = wrk(gateway.url, body, 1, max(5, args.duration // 2), gateway.work, latency=True, key=gateway.key)
            direct = wrk(gateway.upstream + direct_path, direct_body, 1, max(5, args.duration // 2), gateway.work, latency=True)
            rows.append((mode, load["rps"], through["p50"], through["p99"], direct["p50"], direct["p99"], cpu_per_request_us))
        rss = rss_mb(gateway.pids)
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\nRejoinder benchmark: {args.workers} worker(s), store: {str(args.store).lower()} on {where}, {'a master key' if args.key else 'no key'}, "
        f"canned nginx upstream, wrk on loopback, {os.cpu_count()} cores"
    )
    print(
        f"{'mode':<14} {'req/s @c32':>11} {'p50 ms':>8} {'p99 ms':>8} {'direct p50':>11} {'direct p99':>11} {'added p50':>10} {'added p99':>10} {'CPU µs/req':>11}"
    )
    for mode, rps, p50, p99, d50, d99, cpu in rows:
        print(f"{mode:<14} {rps:>11.0f} {p50:>8.3f} {p99:>8.3f} {d50:>11.3f} {d99:>11.3f} {p50 - d50:>10.3f} {p99 - d99:>10.3f} {cpu:>11.0f}")
    print(f"gateway RSS after the runs: {rss:.1f} MB; idle, it used {idle:.2f} % of a core")


if __name__ == "__main__":
    main()
