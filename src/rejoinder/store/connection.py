"""How the gateway connects to its database: SQLite (WAL, checkpoints left to maintenance) or
PostgreSQL through psycopg 3, with a pool sized for the store's reader threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def engine_url(url: str) -> str:
    """`postgresql://…` with the psycopg 3 driver; SQLite URLs as they are."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def connect(url: str, readers: int) -> Engine:
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_size=readers + 1, max_overflow=readers, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # see liveness.maintain
    cursor.close()
