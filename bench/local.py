"""Benchmark: the bundled local model through the gateway.

Prints time to first token, generation speed and the gateway's resident memory for a streamed
`POST /v1/responses` on SmolLM2-135M-Instruct (the `local` extra), run in-process.

    python bench/local.py [--tokens 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_run(url: str, tokens: int) -> tuple[float, float, int]:
    body = json.dumps(
        {"model": "local-smollm2", "input": "Write a long story about a lighthouse keeper.", "stream": True, "max_output_tokens": tokens, "temperature": 0}
    ).encode()
    start = time.perf_counter()
    first = None
    usage = None
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})) as response:
        for line in response:
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event["type"] == "response.output_text.delta" and first is None:
                    first = time.perf_counter()
                if event["type"] in ("response.completed", "response.incomplete"):
                    usage = event["response"]["usage"]
    end = time.perf_counter()
    return first - start, usage["output_tokens"] / (end - first), usage["output_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rejoinder-local-bench-"))
    port = free_port()
    (work / "rejoinder.yaml").write_text(f"models:\n  - {{name: local-smollm2, provider: local, local: {{threads: 2}}}}\ndatabase_url: sqlite:///{work}/r.db\n")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "rejoinder", "serve", "--config", str(work / "rejoinder.yaml"), "--port", str(port), "--log-level", "warning"],
        cwd=work,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/responses"
        cold_first, _, _ = one_run(url, 8)  # loads the model
        runs = [one_run(url, args.tokens) for _ in range(args.runs)]
        rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{gateway.pid}/status").read_text()).group(1)) / 1024
        print(f"\nlocal model SmolLM2-135M-Instruct Q4_1, 2 threads, {args.tokens} tokens max, {args.runs} runs")
        print(f"first token, cold (model load included): {cold_first * 1000:.0f} ms")
        for ttft, rate, count in runs:
            print(f"first token {ttft * 1000:6.1f} ms   {rate:6.1f} tokens/s   {count} tokens")
        print(f"gateway RSS: {rss:.0f} MB")
    finally:
        gateway.terminate()
        gateway.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
