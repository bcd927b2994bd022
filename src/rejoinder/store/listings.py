"""What the console lists and the public API has no list for: a project's stored responses
(newest first, filtered by model, status, key and date) and its conversations. Ids begin with
their creation time, so the newest first is the ids in descending order, and a page's cursor is
the last id it showed. Every function takes an open connection inside a transaction."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from rejoinder.store.paging import page_of
from rejoinder.store.schema import conversations, responses


class ResponseFilter(NamedTuple):
    model: str | None = None
    status: str | None = None
    key_id: str | None = None
    since: int | None = None  # unix seconds, included
    until: int | None = None  # unix seconds, excluded
    previous_response_id: str | None = None  # the responses that continue this one


def responses_page(conn: Connection, project: str, after: str | None, limit: int, only: ResponseFilter) -> tuple[list[Any], bool]:
    """`(id, created_at, status, model, key_id, body)` rows, and whether more follow."""
    query = select(responses.c.id, responses.c.created_at, responses.c.status, responses.c.model, responses.c.key_id, responses.c.body)
    query = query.where(responses.c.project == project)
    equal = (
        (responses.c.model, only.model),
        (responses.c.status, only.status),
        (responses.c.key_id, only.key_id),
        (responses.c.previous_response_id, only.previous_response_id),
    )
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    if only.since is not None:
        query = query.where(responses.c.created_at >= only.since)
    if only.until is not None:
        query = query.where(responses.c.created_at < only.until)
    if after is not None:
        query = query.where(responses.c.id < after)
    return page_of(conn, query.order_by(responses.c.id.desc()), limit)


def conversations_page(conn: Connection, project: str, after: str | None, limit: int) -> tuple[list[Any], bool]:
    """`(id, created_at, metadata)` rows, and whether more follow."""
    query = select(conversations.c.id, conversations.c.created_at, conversations.c.metadata).where(conversations.c.project == project)
    if after is not None:
        query = query.where(conversations.c.id < after)
    return page_of(conn, query.order_by(conversations.c.id.desc()), limit)
