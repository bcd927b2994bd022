"""Usage records: each answered response request adds to its day's counts in memory, and every
`_FLUSH` seconds (and at shutdown) the counts are added to the database's rows through the
store's writer. A request costs a dict update, not a write, and the rows are the sum over every
instance. `GET /v1/organization/usage` reads them, grouped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time

from aiohttp import web

from rejoinder.api.replies import STORE, json_response
from rejoinder.protocol.errors import invalid
from rejoinder.providers.base import Usage
from rejoinder.store import usage
from rejoinder.store.repository import Store

log = logging.getLogger("rejoinder.usage")

_FLUSH = 2.0  # seconds between writes of the counts


class Tally:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: dict[tuple[str, str, str, str], list[int]] = {}
        self.task: asyncio.Task | None = None
        self._day = (0, "")  # (days since the epoch, its date): one strftime a day

    def count(self, project: str, key_id: str, model: str, error: bool, used: Usage | None, requests: int = 1, cost: int = 0) -> None:
        """Add a request (or a turn's use, `requests` 0) to today's counts; `cost` in micro-dollars."""
        days = int(time.time() // 86400)
        if days != self._day[0]:
            self._day = (days, (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat())
        counts = self.pending.setdefault((self._day[1], project, key_id, model), [0] * len(usage.COUNTS))
        counts[0] += requests
        counts[1] += error
        if used is not None:
            counts[2] += used.input_tokens
            counts[3] += used.output_tokens
            counts[4] += used.cached_tokens
            counts[5] += used.cache_write_tokens
            counts[6] += used.web_searches
            counts[7] += used.calls
        counts[8] += cost

    def start(self) -> None:
        self.task = asyncio.create_task(self._every())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.flush()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH)
            await self.flush()

    async def flush(self) -> None:
        pending, self.pending = self.pending, {}
        if not pending:
            return
        rows = [dict(zip(usage.GROUPS + usage.COUNTS, key + tuple(counts), strict=True)) for key, counts in pending.items()]
        try:
            await self.store.write(usage.add, rows)
        except Exception as exc:  # kept for the next flush, not lost
            log.warning("usage counts could not be written (%s); they are kept for the next try", type(exc).__name__)
            for key, counts in pending.items():
                kept = self.pending.setdefault(key, [0] * len(usage.COUNTS))
                for i, value in enumerate(counts):
                    kept[i] += value


async def report(request: web.Request) -> web.Response:
    """`GET /v1/organization/usage?start_date=&end_date=&group_by=`: counts summed by day,
    project, key and/or model (default: the last 30 days, by day and model), and their cost in
    dollars."""
    query = request.query
    today = datetime.date.today()
    start = _day(query.get("start_date"), today - datetime.timedelta(days=29), "start_date")
    end = _day(query.get("end_date"), today, "end_date")
    by = query.getall("group_by", []) + query.getall("group_by[]", []) or ["day", "model"]
    for name in by:
        if name not in usage.GROUPS:
            raise invalid("group_by", f"Invalid 'group_by' value '{name[:32]}': expected some of {', '.join(usage.GROUPS)}.")
    rows = await request.app[STORE].transact(usage.grouped, start, end, list(dict.fromkeys(by)))
    for row in rows:
        row["cost"] = row["cost"] / 1e6  # dollars
    return json_response({"object": "list", "start_date": start, "end_date": end, "group_by": by, "data": rows})


def _day(given: str | None, default: datetime.date, param: str) -> str:
    if given is None:
        return default.isoformat()
    try:
        return datetime.date.fromisoformat(given).isoformat()
    except ValueError:
        raise invalid(param, f"Invalid '{param}': expected a date as YYYY-MM-DD.") from None
