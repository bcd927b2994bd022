"""One page of a listing, and whether more rows follow it: the query (ordered, filtered past
its cursor) is asked for one row more than the page holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select


def page_of(conn: Connection, query: Select, limit: int) -> tuple[list[Any], bool]:
    rows = conn.execute(query.limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit
