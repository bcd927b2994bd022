"""Which gateway instances are alive, and what becomes of the responses a dead one was making.

A streamed response is recorded as `in_progress`, owned by its instance, before its client
sees the id. Each instance beats a heartbeat into `instances`; any instance that finds an
in-progress response whose owner has not beaten within the time to live marks it `failed`,
so after a crash (`kill -9`) every id a client saw still reads as a response, never a 404.
The heartbeat is also the lease of every background run the instance holds: when it lapses,
the run goes back to the queue or ends with a clean terminal event (`runs.end_orphan`).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Connection, Engine, delete, insert, select, update

from rejoinder.store import runs
from rejoinder.store.schema import instances, responses

log = logging.getLogger("rejoinder.store")


def heartbeat(conn: Connection, instance: str) -> None:
    now = int(time.time())
    if conn.execute(update(instances).where(instances.c.id == instance).values(heartbeat_at=now)).rowcount == 0:
        conn.execute(insert(instances).values(id=instance, heartbeat_at=now))


def reap(conn: Connection, ttl: float, endings: runs.Endings) -> list[str]:
    """End as failed every in-progress response whose owner is gone, and re-queue or end every
    background run whose owner is gone (`runs.end_orphan`), as `endings` end them; their ids."""
    cutoff = int(time.time() - ttl)
    alive = select(instances.c.id).where(instances.c.heartbeat_at >= cutoff)
    ended = [
        response_id for response_id, request, cancel in runs.orphans(conn, alive) if runs.end_orphan(conn, response_id, request, cancel, "interrupted", endings)
    ]
    orphans = conn.execute(
        select(responses.c.id, responses.c.body).where(responses.c.status == "in_progress", responses.c.owner.not_in(alive) | responses.c.owner.is_(None))
    ).all()
    for response_id, body in orphans:
        failed, _ = endings.end(body, "failed", "interrupted", None, None)
        conn.execute(
            update(responses).where(responses.c.id == response_id, responses.c.status == "in_progress").values(status="failed", owner=None, body=failed)
        )
    conn.execute(delete(instances).where(instances.c.heartbeat_at < cutoff))
    return ended + [response_id for response_id, _ in orphans]


def maintain(engine: Engine, instance: str, endings: runs.Endings, instance_ttl: float, stopping: threading.Event) -> None:
    """The store's maintenance thread: heartbeats (three per time to live) with the reaping
    above, and SQLite's checkpoints. Those run here, off the commit path: commits never
    checkpoint (`wal_autocheckpoint=0`), so none of them pays for the fsync a checkpoint does
    (measured: 1% of commits took 1–6 ms when they did), and a passive checkpoint here never
    blocks the writer."""
    tick = min(1.0, instance_ttl / 3)
    next_beat = 0.0
    while True:
        try:
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + instance_ttl / 3
                with engine.begin() as conn:
                    heartbeat(conn, instance)
                    ended = reap(conn, instance_ttl, endings)
                if ended:
                    log.warning("ended or re-queued %d responses of stopped instances: %s", len(ended), ", ".join(ended[:10]))
            if engine.dialect.name == "sqlite":
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # a busy or vanished database: try again next time
            log.warning("database maintenance failed: %s", type(exc).__name__)
        if stopping.wait(tick):
            return
