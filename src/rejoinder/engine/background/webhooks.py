"""Webhooks for the end of background runs, signed as OpenAI signs them (Standard Webhooks:
`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>`), so the SDK's
`client.webhooks.unwrap` verifies them.

A run's end writes its deliveries into the outbox in the same transaction as its final form
(`store.runs.finish`), so a delivery is never lost to a crash. Every instance delivers: it
claims due deliveries (pushing their due time on, so no other instance takes them meanwhile),
posts each, and deletes it on a 2xx or sets the next attempt after an exponential backoff.
Every attempt carries the same event id, for the receiver to drop repeats.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any

import aiohttp
import orjson
from sqlalchemy import Connection, and_, delete, select, tuple_, update

from rejoinder.config import WebhookConfig
from rejoinder.protocol.ids import new_id
from rejoinder.providers.http import session
from rejoinder.store.repository import Store
from rejoinder.store.runs import Outbox
from rejoinder.store.schema import webhook_outbox

log = logging.getLogger("rejoinder.webhooks")

_CLAIM_FOR = 60  # seconds a claimed delivery is left to its claimer
_BACKOFF = (1, 5, 30, 120, 600, 1800, 3600)  # seconds before attempt 2, 3, …
_ATTEMPTS = len(_BACKOFF) + 1
_TIMEOUT = aiohttp.ClientTimeout(total=15)


def outbox(hooks: list[WebhookConfig]) -> Outbox:
    """The deliveries that a run ending with `status` makes: one event, one row per webhook."""

    def rows(status: str, response_id: str) -> list[dict[str, Any]]:
        kind = f"response.{status}"
        chosen = [i for i, hook in enumerate(hooks) if kind in hook.events]
        if not chosen:
            return []
        event_id = new_id("evt")
        body = orjson.dumps({"id": event_id, "object": "event", "type": kind, "created_at": int(time.time()), "data": {"id": response_id}})
        return [{"id": event_id, "hook": i, "body": body, "attempts": 0, "due_at": 0} for i in chosen]

    return rows


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, b"%s.%d.%s" % (event_id.encode(), timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _claim(conn: Connection, limit: int) -> list[tuple[str, int, bytes, int]]:
    now = int(time.time())
    due = select(webhook_outbox.c.id, webhook_outbox.c.hook).where(webhook_outbox.c.due_at <= now).order_by(webhook_outbox.c.due_at).limit(limit)
    keys = conn.execute(due.with_for_update(skip_locked=True)).all()
    if not keys:
        return []
    claimed = (
        update(webhook_outbox)
        .where(tuple_(webhook_outbox.c.id, webhook_outbox.c.hook).in_([tuple(key) for key in keys]), webhook_outbox.c.due_at <= now)
        .values(due_at=now + _CLAIM_FOR, attempts=webhook_outbox.c.attempts + 1)
        .returning(webhook_outbox.c.id, webhook_outbox.c.hook, webhook_outbox.c.body, webhook_outbox.c.attempts)
    )
    return [(row[0], row[1], row[2], row[3]) for row in conn.execute(claimed)]


def _settle(conn: Connection, event_id: str, hook: int, delivered: bool, attempts: int) -> None:
    key = and_(webhook_outbox.c.id == event_id, webhook_outbox.c.hook == hook)
    if delivered or attempts >= _ATTEMPTS:
        conn.execute(delete(webhook_outbox).where(key))
    else:
        conn.execute(update(webhook_outbox).where(key).values(due_at=int(time.time()) + _BACKOFF[attempts - 1]))


class Deliverer:
    def __init__(self, store: Store, hooks: list[WebhookConfig]) -> None:
        self.store = store
        self.hooks = hooks

    async def deliver_due(self) -> None:
        """Deliver what is due now (called on the background runner's tick)."""
        if not self.hooks:
            return
        try:
            claimed = await self.store.transact(_claim, 50)
            if claimed:
                await asyncio.gather(*(self._deliver(*delivery) for delivery in claimed))
        except Exception as exc:  # a busy or vanished database: the deliveries wait for the next tick
            log.warning("webhook delivery: %s", type(exc).__name__)

    async def _deliver(self, event_id: str, hook_index: int, body: bytes, attempts: int) -> None:
        hook = self.hooks[hook_index] if hook_index < len(self.hooks) else None
        delivered = False
        if hook is not None:
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(hook.secret, event_id, timestamp, body),
            }
            try:
                async with session().post(hook.url, data=body, headers=headers, timeout=_TIMEOUT, allow_redirects=False) as answer:
                    delivered = 200 <= answer.status < 300
                    outcome = str(answer.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = type(exc).__name__
            if not delivered:
                log.warning("webhook %s to hook %d failed (attempt %d): %s", event_id, hook_index, attempts, outcome)
        await self.store.transact(_settle, event_id, hook_index, delivered or hook is None, attempts)
