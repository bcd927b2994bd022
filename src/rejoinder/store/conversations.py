"""Conversations in the database: each a row and its items in order.

Every function takes an open connection inside a transaction, so the caller decides what
commits together (a turn's items commit with its response). Items are appended in contiguous
blocks of positions reserved from the conversation's own counter: the reservation locks the
conversation's row until the transaction ends, so two turns finishing at once each keep their
items together, in the order each produced them.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from rejoinder.store.paging import page_of
from rejoinder.store.schema import conversation_items, conversations

Row = tuple[str, bytes]
"""An item: its id and its stored JSON."""


def _mine(conversation_id: str, project: str) -> Any:
    """A conversation of `project`'s: to any other, it does not exist."""
    return (conversations.c.id == conversation_id) & (conversations.c.project == project)


def create(conn: Connection, conversation_id: str, project: str, created_at: int, metadata: bytes, rows: list[Row]) -> None:
    # the first revision is a clock reading, so one deleted and made again under the same id
    # never looks like the conversation a reader kept
    row = {"id": conversation_id, "project": project, "created_at": created_at, "metadata": metadata, "next_position": len(rows), "revision": time.time_ns()}
    conn.execute(insert(conversations), row)
    _insert(conn, conversation_id, project, 0, rows)


def get(conn: Connection, conversation_id: str, project: str) -> Any:
    """`(id, created_at, metadata)`, or None."""
    query = select(conversations.c.id, conversations.c.created_at, conversations.c.metadata).where(_mine(conversation_id, project))
    return conn.execute(query).first()


def update_metadata(conn: Connection, conversation_id: str, project: str, metadata: bytes) -> Any:
    conn.execute(update(conversations).where(_mine(conversation_id, project)).values(metadata=metadata))
    return get(conn, conversation_id, project)


def remove(conn: Connection, conversation_id: str, project: str) -> bool:
    if conn.execute(delete(conversations).where(_mine(conversation_id, project))).rowcount == 0:
        return False
    conn.execute(delete(conversation_items).where(_its(conversation_id, project)))
    return True


def append(conn: Connection, conversation_id: str, project: str, rows: list[Row]) -> bool:
    """Add `rows` at the end, contiguous; False if the conversation is gone (then nothing is
    added: a turn on a conversation deleted meanwhile keeps its response, not its items)."""
    reserve = update(conversations).where(_mine(conversation_id, project)).values(next_position=conversations.c.next_position + len(rows))
    end = conn.execute(reserve.returning(conversations.c.next_position)).scalar()
    if end is None:
        return False
    _insert(conn, conversation_id, project, end - len(rows), rows)
    return True


def _its(conversation_id: str, project: str) -> Any:
    """The items of a conversation of `project`'s."""
    return (conversation_items.c.conversation_id == conversation_id) & (conversation_items.c.project == project)


def _insert(conn: Connection, conversation_id: str, project: str, start: int, rows: list[Row]) -> None:
    if rows:
        conn.execute(
            insert(conversation_items),
            [{"project": project, "conversation_id": conversation_id, "position": start + i, "id": id_, "body": body} for i, (id_, body) in enumerate(rows)],
        )


def since(conn: Connection, conversation_id: str, project: str, revision: int, position: int) -> tuple[int, list[Any]] | None:
    """What a reader that has the items before `position` at `revision` is missing: the
    conversation's revision, and `(position, body)` rows, oldest first (all of them if items
    were removed since `revision`); None if there is no such conversation."""
    current = conn.execute(select(conversations.c.revision).where(_mine(conversation_id, project))).scalar()
    if current is None:
        return None
    if current != revision:
        position = 0
    query = select(conversation_items.c.position, conversation_items.c.body).where(_its(conversation_id, project), conversation_items.c.position >= position)
    return current, conn.execute(query.order_by(conversation_items.c.position)).all()


def page(conn: Connection, conversation_id: str, project: str, after: str | None, limit: int, descending: bool) -> tuple[list[Any], bool] | None:
    """A page of `(id, body)` rows after the item `after`, and whether more follow; None if there
    is no such conversation. O(page): the cursor is found by the `(conversation, id)` index."""
    if get(conn, conversation_id, project) is None:
        return None
    mine = _its(conversation_id, project)
    query = select(conversation_items.c.id, conversation_items.c.body).where(mine)
    if after is not None:
        cursor = select(conversation_items.c.position).where(mine, conversation_items.c.id == after).limit(1).scalar_subquery()
        query = query.where(conversation_items.c.position < cursor if descending else conversation_items.c.position > cursor)
    order = conversation_items.c.position.desc() if descending else conversation_items.c.position
    return page_of(conn, query.order_by(order), limit)


def item(conn: Connection, conversation_id: str, project: str, item_id: str) -> bytes | None:
    if get(conn, conversation_id, project) is None:
        return None
    query = select(conversation_items.c.body).where(_its(conversation_id, project), conversation_items.c.id == item_id)
    return conn.execute(query.limit(1)).scalar()


def remove_item(conn: Connection, conversation_id: str, project: str, item_id: str) -> bool:
    if get(conn, conversation_id, project) is None:
        return False
    gone = delete(conversation_items).where(_its(conversation_id, project), conversation_items.c.id == item_id)
    if conn.execute(gone).rowcount == 0:
        return False
    conn.execute(update(conversations).where(_mine(conversation_id, project)).values(revision=conversations.c.revision + 1))
    return True
