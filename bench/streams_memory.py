"""Memory under many concurrent streams: is what stays after them held objects or the
allocator's high-water mark?

Runs rounds of concurrent 10-second streams (the test suite's fake Chat Completions server,
`mock-slow`) through one gateway and prints its RSS after each round; RSS that stops growing
between rounds is a high-water mark, not a leak. With gdb installed it then asks glibc to give
free memory back (`malloc_trim(0)`) and prints RSS again. Everything binds to 127.0.0.1.

    python bench/streams_memory.py [--streams 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time

import aiohttp
from harness import gateway_on_fake, rss_mb  # bench/ is on the path: this script's folder


async def round_of_streams(url: str, count: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            async with session.post(url + "/v1/responses", json={"model": "mock-slow", "input": f"n{i}", "stream": True}) as response:
                assert b"event: response." in await response.read()

        await asyncio.gather(*(one(i) for i in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with gateway_on_fake() as (gw, _):
        pid = gw.process.pid
        print(f"\nRSS at start: {rss_mb([pid]):.1f} MB")
        for n in range(args.rounds):
            started = time.monotonic()
            asyncio.run(round_of_streams(gw.url, args.streams))
            print(f"after round {n + 1} of {args.streams} concurrent streams ({time.monotonic() - started:.0f} s): {rss_mb([pid]):.1f} MB")
        if shutil.which("gdb"):
            subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"], capture_output=True, check=False)
            print(f"after malloc_trim(0): {rss_mb([pid]):.1f} MB")


if __name__ == "__main__":
    main()
