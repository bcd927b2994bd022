"""Background runs in the database: the durable queue, each run's event log, and its end.

Every function takes an open connection inside a transaction, so the caller decides what
commits together: a run is queued with its first two events; a run ends (its final form, its
items, its last events, its webhook deliveries, leaving the queue) in one transaction, guarded
so that only the instance that owns it, and only once, can end it. Claims take the oldest
queued runs with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances never claim the same run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from rejoinder.protocol.response import Response
from rejoinder.store.schema import ItemRow, Tenant, events, items, response_row, responses, runs, webhook_outbox

Outbox = Callable[[str, str], list[dict[str, Any]]]
"""The webhook deliveries a background run's end makes: `(status, response id)` → outbox rows."""


class Endings(NamedTuple):
    """What the engine decides when the store ends a response on its own (its instance is gone,
    a queued run is cancelled), given to the `Store` at construction (`engine.lifecycle`)."""

    end: Callable[[bytes, str, str, bytes | None, int | None], tuple[bytes, bytes]]
    """`(its stored body, status, why, its request, its log's last event or None)` → its body
    as ended (`why` names the reason it failed: `interrupted`, `shut_down`), and the frames of
    the events that close its logged stream."""
    outbox: Outbox


ACTIVE = ("queued", "in_progress")


class LostRun(Exception):
    """The run is no longer this instance's to end: it was ended elsewhere (its owner was
    presumed dead, or it was cancelled while queued)."""


def enqueue(
    conn: Connection,
    response: Response,
    body: bytes,
    tenant: Tenant,
    principal: bytes,
    request: bytes,
    first_frames: bytes,
    first_last: int,
    owner: str | None,
) -> bool:
    """Queue a run of `tenant`'s (for `principal`, as JSON) with its first events (numbered 0 to
    `first_last`), or hand it straight to `owner`, the instance that accepted it, if no run is
    waiting (so none is overtaken). Whether `owner` took it."""
    if owner is not None and conn.execute(select(runs.c.response_id).where(runs.c.owner.is_(None)).limit(1)).first() is not None:
        owner = None
    if owner is not None:  # taken at once: its column and body say in progress
        body = _with_status(body, "in_progress")
    conn.execute(insert(responses), response_row(response, body, "in_progress" if owner else "queued", owner, tenant)._asdict())
    row = {"response_id": response.id, "queued_at": time.time_ns() // 1000, "request": request, "owner": owner, "principal": principal}
    conn.execute(insert(runs), row)
    conn.execute(insert(events), {"response_id": response.id, "seq": 0, "last_seq": first_last, "frames": first_frames})
    return owner is not None


def claim(conn: Connection, instance: str, limit: int) -> list[tuple[str, bytes, bytes, str, bytes | None]]:
    """Take up to `limit` of the oldest queued runs for `instance`: `(id, request, body, project,
    principal)` each."""
    oldest = select(runs.c.response_id).where(runs.c.owner.is_(None)).order_by(runs.c.queued_at).limit(limit).with_for_update(skip_locked=True)
    ids = conn.execute(oldest).scalars().all()
    if not ids:
        return []
    taken = update(runs).where(runs.c.response_id.in_(ids), runs.c.owner.is_(None)).values(owner=instance).returning(runs.c.response_id)
    ids = conn.execute(taken).scalars().all()
    if not ids:
        return []
    query = select(runs.c.response_id, runs.c.request, responses.c.body, responses.c.project, runs.c.principal)
    rows = conn.execute(query.join(responses, responses.c.id == runs.c.response_id).where(runs.c.response_id.in_(ids)).order_by(runs.c.queued_at)).all()
    claimed = []
    for response_id, request, body, project, principal in rows:  # its column and its body say in progress
        body = _with_status(body, "in_progress")
        conn.execute(update(responses).where(responses.c.id == response_id).values(status="in_progress", owner=instance, body=body))
        claimed.append((response_id, request, body, project, principal))
    return claimed


def cancels(conn: Connection, instance: str) -> list[str]:
    """The runs of `instance` that a client asked to cancel."""
    return list(conn.execute(select(runs.c.response_id).where(runs.c.owner == instance, runs.c.cancel)).scalars())


def append(conn: Connection, response_id: str, first: int, joined: bytes, last: int, instance: str, snapshot: bytes | None) -> None:
    """Log events `first`…`last` of a run; with `snapshot`, its current form for readers.
    Raises `LostRun` when the run is no longer `instance`'s (ended elsewhere, or deleted)."""
    mine = update(responses).where(responses.c.id == response_id, responses.c.owner == instance, responses.c.status == "in_progress")
    if conn.execute(mine.values(body=snapshot) if snapshot is not None else mine.values(owner=instance)).rowcount == 0:
        raise LostRun(response_id)
    conn.execute(insert(events), {"response_id": response_id, "seq": first, "last_seq": last, "frames": joined})


def _end(owned: Any) -> Any:
    """A run's final form over its active row, if `owned` still holds (built once: an `in_`
    built per run left a reference cycle for the garbage collector)."""
    where = (responses.c.id == bindparam("ending"), owned, responses.c.status.in_(ACTIVE))
    return update(responses).where(*where).values(status=bindparam("ended_status"), body=bindparam("ended_body"), owner=None)


_END_OWNED = _end(responses.c.owner == bindparam("instance"))
_END_UNOWNED = _end(responses.c.owner.is_(None))


def finish(
    conn: Connection,
    row: dict[str, Any],
    item_rows: list[ItemRow],
    first: int,
    joined: bytes,
    last: int,
    instance: str | None,
    outbox: list[dict[str, Any]],
    also: Callable[[Connection], Any] | None = None,
) -> None:
    """End a run: its final form, items, last events, webhook deliveries and `also` (a
    conversation's new items), as one."""
    ended = conn.execute(
        _END_OWNED if instance is not None else _END_UNOWNED,
        {"ending": row["id"], "instance": instance, "ended_status": row["status"], "ended_body": row["body"]},
    )
    if ended.rowcount == 0:
        raise LostRun(row["id"])
    if item_rows:
        conn.execute(insert(items), [row._asdict() for row in item_rows])
    if joined:
        conn.execute(insert(events), {"response_id": row["id"], "seq": first, "last_seq": last, "frames": joined})
    conn.execute(delete(runs).where(runs.c.response_id == row["id"]))
    if outbox:
        conn.execute(insert(webhook_outbox), outbox)
    if also is not None:
        also(conn)


def cancel(conn: Connection, response_id: str, endings: Endings) -> str:
    """Ask for a run's cancellation: `cancelled` when it was still queued (it ends here and
    now), `running` when its owner must stop it, `ended` when it had already ended."""
    if conn.execute(delete(runs).where(runs.c.response_id == response_id, runs.c.owner.is_(None))).rowcount:
        body, _ = endings.end(conn.execute(select(responses.c.body).where(responses.c.id == response_id)).scalar_one(), "cancelled", "", None, None)
        conn.execute(update(responses).where(responses.c.id == response_id).values(status="cancelled", body=body, owner=None))
        deliveries = endings.outbox("cancelled", response_id)
        if deliveries:
            conn.execute(insert(webhook_outbox), deliveries)
        return "cancelled"
    if conn.execute(update(runs).where(runs.c.response_id == response_id).values(cancel=True)).rowcount:
        return "running"
    return "ended"


def log_after(conn: Connection, response_id: str, after: int) -> tuple[bool, list[tuple[int, bytes]]]:
    """Whether the run is still going, then its logged event batches holding events numbered
    above `after`, as `(first, frames)`. Read in that order, an ended run's batches are all there."""
    status = conn.execute(select(responses.c.status).where(responses.c.id == response_id)).scalar()
    query = select(events.c.seq, events.c.frames).where(events.c.response_id == response_id, events.c.last_seq > after).order_by(events.c.seq)
    return status in ACTIVE, [(row[0], row[1]) for row in conn.execute(query)]


def state(conn: Connection, response_id: str, project: str | None = None) -> tuple[str, bytes] | None:
    """A response's status and body (if it is `project`'s, when one is given)."""
    query = select(responses.c.status, responses.c.body).where(responses.c.id == response_id)
    row = conn.execute(query.where(responses.c.project == project) if project is not None else query).first()
    return (row[0], row[1]) if row is not None else None


def end_orphan(conn: Connection, response_id: str, request: bytes, cancel_asked: bool, why: str, endings: Endings) -> str:
    """A run whose owner is gone: back to the queue when it emitted nothing of its own (and no
    one asked to cancel it), else ended as failed (for the reason `why`) or cancelled, as
    `endings` end it.
    What became of it: `queued`, `failed` or `cancelled`."""
    last_batch, last = conn.execute(select(func.max(events.c.seq), func.max(events.c.last_seq)).where(events.c.response_id == response_id)).one()
    if not last_batch and not cancel_asked:  # its log holds only the batch logged when it was queued
        conn.execute(update(runs).where(runs.c.response_id == response_id).values(owner=None))
        body = conn.execute(select(responses.c.body).where(responses.c.id == response_id)).scalar()
        if body is not None:  # back in the queue: its column and its body say so
            conn.execute(update(responses).where(responses.c.id == response_id).values(status="queued", owner=None, body=_with_status(body, "queued")))
        return "queued"
    found = state(conn, response_id)
    if found is None or found[0] not in ACTIVE:  # deleted, or ended with its queue entry left: nothing to end
        conn.execute(delete(runs).where(runs.c.response_id == response_id))
        return found[0] if found else "deleted"
    last = last or 0
    status = "cancelled" if cancel_asked else "failed"
    body, joined = endings.end(found[1], status, why, request, last)
    conn.execute(update(responses).where(responses.c.id == response_id).values(owner=None))
    row = {"id": response_id, "status": status, "body": body}
    finish(conn, row, [], last + 1, joined, last + 2, None, endings.outbox(status, response_id))
    return status


def _with_status(body: bytes, status: str) -> bytes:
    """A stored Response's JSON with the status a queue move gave it."""
    response = orjson.loads(body)
    response["status"] = status
    return orjson.dumps(response)


def queue_depth(conn: Connection) -> int:
    """Runs waiting for an instance, across all of them."""
    return conn.execute(select(func.count()).select_from(runs).where(runs.c.owner.is_(None))).scalar_one()
