"""How the gateway's pollers rest between rounds (the background runner's queue, vector store
ingestion): woken at once by work that came in on this instance, or after their poll interval
for work that came in on another."""

from __future__ import annotations

import asyncio


async def until_woken(wake: asyncio.Event, seconds: float) -> None:
    """Until `wake` is set or `seconds` pass; then `wake` is cleared for the next rest."""
    try:
        await asyncio.wait_for(wake.wait(), seconds)
    except TimeoutError:
        pass
    wake.clear()
