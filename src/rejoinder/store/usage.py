"""Usage counts in the database: added to, per (day, project, key, model), and read back
grouped. Every function takes an open connection inside a transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from rejoinder.store.schema import usage

COUNTS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "web_searches", "upstream_calls", "cost")
GROUPS = ("day", "project", "key_id", "model")


def _upsert(insert: Any) -> Any:
    made = insert(usage)
    return made.on_conflict_do_update(index_elements=list(GROUPS), set_={name: usage.c[name] + made.excluded[name] for name in COUNTS})


# Built once per dialect: building it on every flush left reference cycles (the `excluded` alias)
# for the garbage collector each time.
_UPSERTS = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(postgresql_insert)}


def add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add each row's counts to its (day, project, key, model) row, making it when new."""
    conn.execute(_UPSERTS[conn.dialect.name], rows)


def grouped(conn: Connection, start: str, end: str, by: list[str]) -> list[dict[str, Any]]:
    """Counts from day `start` to day `end` (both included), summed by the columns `by`."""
    columns = [usage.c[name] for name in by]
    query = select(*columns, *(func.sum(usage.c[name]).label(name) for name in COUNTS)).where(usage.c.day >= start, usage.c.day <= end)
    rows = conn.execute(query.group_by(*columns).order_by(*columns)).all()
    return [{**{name: row._mapping[name] for name in by}, **{name: int(row._mapping[name]) for name in COUNTS}} for row in rows]
