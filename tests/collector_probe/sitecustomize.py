"""Loaded by a gateway process started with this folder on PYTHONPATH (tests/test_reference_cycles.py):
on SIGUSR2 it runs a full collection and writes how many unreachable objects it found to the
file `COLLECTOR_PROBE_OUT` names. Test instrumentation only; the gateway never ships it."""

import gc
import os
import signal

_OUT = os.environ.get("COLLECTOR_PROBE_OUT")


def _collect(_signum, _frame) -> None:
    found = gc.collect()
    with open(_OUT + ".part", "w") as out:
        out.write(str(found))
    os.replace(_OUT + ".part", _OUT)


if _OUT:
    signal.signal(signal.SIGUSR2, _collect)
