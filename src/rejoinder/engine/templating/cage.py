"""Prompt templates rendered in a cage: a small pool of worker processes, each under CPU-time
and memory limits, so that no template can touch the serving process.

The sandbox (`engine.templating.sandbox`) checks what it can in Python, but one C-level step
(a big-integer power, a `replace` into a gigabyte) holds the GIL for as long as it takes; in
the serving process that froze every client. Here a render is sent to a worker over its pipes;
a worker that has not answered within `DEADLINE` seconds is killed and replaced, and the
request gets a 400 `template_not_allowed`. A worker also limits itself: its address space
(`MEMORY_BYTES` above what it started with: a huge allocation is a `MemoryError`, not the
machine's memory), its CPU time for each render (a worker whose parent is gone dies by
`SIGXCPU`), and its priority (`nice`), so a render the deadline has not stopped yet takes CPU
from nobody. Workers start on first use, not with the gateway, and are reused.

A worker is `engine.templating.worker`, run as its own program; its frames are a 4-byte
big-endian length and JSON, both ways.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from typing import Any

import orjson

from rejoinder.protocol.errors import invalid

log = logging.getLogger("rejoinder.prompts")

DEADLINE = 1.0  # seconds one render may take, its worker's start not counted
MEMORY_BYTES = 512 * 1024 * 1024  # address space a worker may add to what it starts with
NICENESS = 19  # a worker's priority below the gateway's
HEADER = struct.Struct(">I")


class Cage:
    """Up to `size` worker processes, started when first needed; one render at a time each."""

    def __init__(self, size: int = 2) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []

    async def render(self, template: dict[str, Any], texts: dict[str, str], parts: dict[str, dict[str, Any]]) -> tuple[str | None, list[Any]]:
        """`sandbox.render_template(template, texts, parts)`, run in a worker; a template
        that overruns the deadline or kills its worker is a 400 `template_not_allowed`."""
        job = orjson.dumps([template, texts, parts])
        async with self._slots:
            worker = self._idle.pop() if self._idle else await _Worker.start()
            try:
                reply = await asyncio.wait_for(worker.ask(job), DEADLINE)
            except TimeoutError:
                await worker.kill()
                raise invalid("prompt", f"The prompt's template took longer than {DEADLINE:g} s to render.", "template_not_allowed") from None
            except (asyncio.IncompleteReadError, ConnectionError):  # the worker died: its limits stopped the template
                await worker.kill()
                log.warning("a template worker ended while rendering (exit status %s)", worker.process.returncode)
                raise invalid("prompt", "The prompt's template asked for more CPU time or memory than a template may use.", "template_not_allowed") from None
            except BaseException:  # the request was cancelled mid-render: the worker's answer would be stale
                await worker.kill()
                raise
            self._idle.append(worker)
        if "error" in reply:
            error = reply["error"]
            raise invalid(error["param"], error["message"], error["code"])
        instructions, rendered = reply["ok"]
        return instructions, rendered

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().kill()


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rejoinder.engine.templating.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def ask(self, job: bytes) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(HEADER.pack(len(job)) + job)
        await stdin.drain()
        (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
        return orjson.loads(await stdout.readexactly(size))

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
