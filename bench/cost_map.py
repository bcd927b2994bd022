"""Where a request's CPU goes: `bench/responses.py`'s setup (canned nginx upstream, `store: true`
on SQLite, a master key, metrics on) under load, sampled by py-spy with native frames, each
sample put in the stage of the request it belongs to.

Per mode it prints the gateway's CPU per request (from /proc, in a run without the profiler),
then each stage's share of the samples and that share of the CPU in microseconds, with how much
of it ran in native code (C extensions, the interpreter's own C, libc and the kernel's system
calls) rather than Python bytecode. Samples of threads waiting (for a lock, the GIL, a queue)
are not CPU and are left out.

A sample belongs to the stage that claims its innermost frame it can: first the stages of a
request's own work (so an `encode` called while storing is encoding, and aiohttp's shared writer
is the upstream client's when the client called it), then, for what none of them claims, the
layers everything runs on (the HTTP server, the handler, the event loop).

Needs nginx, wrk and py-spy (`pip install -e '.[bench]'`); py-spy must be allowed to ptrace the
gateway (root, or `kernel.yama.ptrace_scope = 0`).

    python bench/cost_map.py [--duration 20] [--rate 40]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from responses import MODES, bench_gateway, loaded, wrk

# (stage, a pattern one frame matches): a request's own work, claimed innermost first.
STAGES = [
    ("garbage collector", r"^(gc_collect|collect_generations|gc_collect_main|_PyObject_GC_Alloc)"),
    ("encoding (msgspec)", r"\((rejoinder/protocol/response\.py|rejoinder/protocol/sse\.py)|^encode_item "),
    ("reading the body", r"^read_body \("),
    ("decoding + checking", r"\(rejoinder/protocol/(request|tools|checks|items|hosted_schemas)\.py|^Prompts\.decode "),
    ("authentication", r"\(rejoinder/engine/access/principals\.py"),
    ("limits", r"\(rejoinder/engine/access/limits\.py|^_admitted "),
    ("routing", r"\(rejoinder/engine/router\.py"),
    ("store: writer thread", r"^Store\.(_write_loop|_commit) "),
    ("store: enqueueing", r"\(rejoinder/store/"),
    ("metrics", r"\(prometheus_client/|^Metrics\."),
    ("usage tally", r"\(rejoinder/api/usage\.py"),
    ("access log", r"^AccessLog\."),
    ("provider translation", r"\(rejoinder/providers/(openai_chat|openai_chat_body|translate|tokens|base)\.py"),
    ("upstream client", r"\(rejoinder/providers/(http|client)\.py|httptools|\(aiohttp/(client|client_reqrep|client_proto|connector|client_middlewares)\.py"),
    ("building events", r"\(rejoinder/engine/(builder|lifecycle)\.py"),
    ("preparing the context", r"\(rejoinder/engine/(engine|skeleton|context/)"),
    ("the run", r"\(rejoinder/engine/(run|sinks)\.py"),
]
# What everything runs on: claims a sample no stage above claimed, innermost first.
LAYERS = [
    ("HTTP server (aiohttp)", r"\(aiohttp/"),
    ("the API handler", r"\(rejoinder/api/"),
    ("event loop (uvloop, asyncio)", r"\((asyncio/|loop\.c|_asynciomodule\.c|core\.c|contextvars)"),
    ("thread pool", r"\(concurrent/futures/"),
]
_CLAIMS = [[(stage, re.compile(pattern)) for stage, pattern in rules] for rules in (STAGES, LAYERS)]
# A thread blocked here is waiting, not running: such a sample is no CPU.
_WAITING = re.compile(
    r"^(PyThread_acquire_lock_timed|pthread_cond_timedwait|pthread_cond_wait|take_gil|sem_wait|sem_timedwait|do_futex_wait|lock_PyThread_acquire_lock) "
)
_NATIVE = re.compile(r"\([^()]*\.(c|h|so[.0-9]*)(:\d+)?\)$|^0x[0-9a-f]+ ")


def stage_of(frames: list[str]) -> str:
    for claims in _CLAIMS:
        for frame in reversed(frames):
            for stage, claim in claims:
                if claim.search(frame):
                    return stage
    return "other"


def read_samples(path: Path) -> tuple[Counter, Counter, int]:
    """Samples per stage, those of them whose innermost frame is native code, and the samples
    left out as waiting."""
    stages: Counter = Counter()
    native: Counter = Counter()
    waiting = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(_WAITING.match(frame) for frame in frames[-4:]):
            waiting += int(count)
            continue
        stage = stage_of(frames)
        stages[stage] += int(count)
        if _NATIVE.search(frames[-1]):
            native[stage] += int(count)
    return stages, native, waiting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per mode while sampling")
    parser.add_argument("--rate", type=int, default=40, help="samples per second (native unwinding pauses the gateway; keep it low)")
    parser.add_argument("--save", type=Path, help="a folder to keep each mode's raw stacks in (py-spy's collapsed format, for a flame graph)")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is needed: pip install -e '.[bench]'")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    with bench_gateway() as gateway:
        pid = gateway.pids[0]
        for mode, model, _, stream in MODES:
            body = {"model": model, "input": "Hello", "store": True, "stream": stream}
            load, cpu_us = loaded(gateway, body, 8)
            profile = (args.save or gateway.work) / f"{mode}.txt"
            command = [spy, "record", "--pid", str(pid), "--native", "--format", "raw", "--rate", str(args.rate)]
            sampler = subprocess.Popen([*command, "--duration", str(args.duration + 2), "-o", str(profile)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1)
            sampled = wrk(gateway.url, body, 32, args.duration, gateway.work, key=gateway.key)
            if sampler.wait() != 0:
                sys.exit("py-spy failed: " + sampler.stderr.read().decode()[-500:])
            stages, native, waiting = read_samples(profile)
            total = sum(stages.values())
            print(f"\n{mode}: {cpu_us:.0f} µs of CPU per request ({load['rps']:.0f} req/s unprofiled, {sampled['rps']:.0f} while sampled)")
            print(f"  {total} samples of CPU at {args.rate} Hz ({waiting} of threads waiting left out)")
            print(f"  {'stage':<30} {'share':>6} {'µs/req':>7} {'native':>7}")
            for stage, count in stages.most_common():
                print(f"  {stage:<30} {count / total:>6.1%} {count / total * cpu_us:>7.0f} {native[stage] / count:>7.0%}")


if __name__ == "__main__":
    main()
