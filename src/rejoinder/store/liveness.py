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

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from rejoinder.store import runs
from rejoinder.store.schema import instances, responses, vector_store_files
from rejoinder.store.schema import runs as queue

log = logging.getLogger("rejoinder.store")


# The maintenance thread's statements, built once: building them on every beat left reference
# cycles (SQLAlchemy's column collections) for the garbage collector each time.
_BEAT = update(instances).where(instances.c.id == bindparam("instance")).values(heartbeat_at=bindparam("now"))
_JOIN = insert(instances).values(id=bindparam("instance"), heartbeat_at=bindparam("now"))
_ALIVE = select(instances.c.id).where(instances.c.heartbeat_at >= bindparam("cutoff"))
_ORPHANS = select(responses.c.id, responses.c.body).where(responses.c.status == "in_progress", responses.c.owner.not_in(_ALIVE) | responses.c.owner.is_(None))
_FAIL = (
    update(responses)
    .where(responses.c.id == bindparam("response_id"), responses.c.status == "in_progress")
    .values(status="failed", owner=None, body=bindparam("failed"))
)
_ORPHANED_RUNS = select(queue.c.response_id, queue.c.request, queue.c.cancel).where(queue.c.owner.is_not(None), queue.c.owner.not_in(_ALIVE))
_ORPHANED_FILES = (
    update(vector_store_files)
    .where(vector_store_files.c.status == "in_progress", vector_store_files.c.owner.is_not(None), vector_store_files.c.owner.not_in(_ALIVE))
    .values(owner=None)
)
_GONE = delete(instances).where(instances.c.heartbeat_at < bindparam("cutoff"))


def heartbeat(conn: Connection, instance: str) -> None:
    beat = {"instance": instance, "now": int(time.time())}
    if conn.execute(_BEAT, beat).rowcount == 0:
        conn.execute(_JOIN, beat)


def reap(conn: Connection, ttl: float, endings: runs.Endings) -> list[str]:
    """End as failed every in-progress response whose owner is gone, re-queue or end every
    background run whose owner is gone (`runs.end_orphan`), as `endings` end them, and put the
    files a gone instance was ingesting back in the wait; the responses' and runs' ids."""
    cutoff = {"cutoff": int(time.time() - ttl)}
    ended = [
        response_id
        for response_id, request, cancel in conn.execute(_ORPHANED_RUNS, cutoff).all()
        if runs.end_orphan(conn, response_id, request, cancel, "interrupted", endings)
    ]
    orphans = conn.execute(_ORPHANS, cutoff).all()
    for response_id, body in orphans:
        failed, _ = endings.end(body, "failed", "interrupted", None, None)
        conn.execute(_FAIL, {"response_id": response_id, "failed": failed})
    conn.execute(_ORPHANED_FILES, cutoff)  # a dead instance's ingestions wait for another
    conn.execute(_GONE, cutoff)
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
