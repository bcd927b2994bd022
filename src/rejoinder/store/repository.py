"""The one repository over the database: responses and their items.

Writes are group-committed: every response finished while a transaction is in flight joins the
next one, so under load the database sees one transaction per batch, not per request, and
each caller still returns only once its own rows are durable.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rejoinder.store.schema import items, responses

log = logging.getLogger("rejoinder.store")

_MIGRATIONS = Path(__file__).with_name("migrations")
_CHAIN = text(
    """
    WITH RECURSIVE chain(id, previous_response_id, depth) AS (
        SELECT id, previous_response_id, 0 FROM responses WHERE id = :id
        UNION ALL
        SELECT r.id, r.previous_response_id, c.depth + 1
        FROM responses r JOIN chain c ON r.id = c.previous_response_id
    )
    SELECT items.body FROM chain LEFT JOIN items ON items.response_id = chain.id
    ORDER BY chain.depth DESC, items.role, items.position
    """
)


def async_url(url: str) -> str:
    """`sqlite:///x.db` and `postgresql://…` as the async drivers want them."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Store:
    def __init__(self, url: str) -> None:
        url = async_url(url)
        parsed = make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if self.sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.sqlite)
        if self.sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._pending: list[tuple[dict, list[dict], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (serialized across PostgreSQL instances)."""
        async with self.engine.begin() as conn:
            if not self.sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(7305402)"))
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def save(self, response: dict[str, Any], body: bytes, item_rows: list[dict[str, Any]]) -> None:
        """Store one finished response; returns once it is committed."""
        row = {"id": response["id"], "created_at": response["created_at"], "previous_response_id": response["previous_response_id"], "body": body}
        future = asyncio.get_running_loop().create_future()
        self._pending.append((row, item_rows, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await asyncio.shield(future)

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self.engine.begin() as conn:
                        await conn.execute(insert(responses), [row for row, _, _ in batch])
                        rows = [item for _, item_rows, _ in batch for item in item_rows]
                        if rows:
                            await conn.execute(insert(items), rows)
                except Exception as exc:  # every waiter learns of the failure
                    log.error("could not store %d responses: %s", len(batch), type(exc).__name__)
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._writer = None

    async def get(self, response_id: str) -> bytes | None:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(responses.c.body).where(responses.c.id == response_id))
            return result.scalar()

    async def delete(self, response_id: str) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(delete(items).where(items.c.response_id == response_id))
            result = await conn.execute(delete(responses).where(responses.c.id == response_id))
            return result.rowcount > 0

    async def chain(self, response_id: str) -> list[bytes] | None:
        """Bodies of every item of `response_id` and its predecessors, oldest first; None if unknown."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_CHAIN, {"id": response_id})).all()
        if not rows:
            return None
        return [row[0] for row in rows if row[0] is not None]

    async def items_by_id(self, ids: list[str]) -> dict[str, bytes]:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(items.c.id, items.c.body).where(items.c.id.in_(ids)))
            return {row[0]: row[1] for row in result}

    async def input_items(self, response_id: str, after: str | None, limit: int, descending: bool) -> tuple[list[Any], bool] | None:
        """A page of a response's input items as `(id, body)` rows and whether more follow;
        None if the response is unknown."""
        async with self.engine.connect() as conn:
            if (await conn.execute(select(responses.c.id).where(responses.c.id == response_id))).first() is None:
                return None
            query = select(items.c.id, items.c.body).where(items.c.response_id == response_id, items.c.role == "input")
            if after is not None:
                cursor = (
                    select(items.c.position).where(items.c.response_id == response_id, items.c.role == "input", items.c.id == after).scalar_subquery()
                )
                query = query.where(items.c.position < cursor if descending else items.c.position > cursor)
            order = items.c.position.desc() if descending else items.c.position
            rows = (await conn.execute(query.order_by(order).limit(limit + 1))).all()
        return list(rows[:limit]), len(rows) > limit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _upgrade(connection: Any) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
