"""The one repository over the database: responses and their items.

Database work runs on SQLAlchemy's synchronous engine off the event loop: one thread hop per
call is much cheaper than an async driver's hop per statement (measured: aiosqlite cost ~1.1 ms
of CPU per stored response, this design ~0.2 ms). Writes are group-committed by a single writer
thread: every response finished while a transaction is in flight joins the next one, so under
load the database sees one transaction per batch, and each caller still returns only once its
own rows are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_urlsafe
from typing import Any, Callable, TypeVar

from sqlalchemy import Connection, Engine, delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from rejoinder.protocol.ids import new_id
from rejoinder.protocol.response import Response
from rejoinder.store.connection import connect
from rejoinder.store.liveness import maintain
from rejoinder.store.paging import page_of
from rejoinder.store.runs import Endings
from rejoinder.store.schema import ItemRow, ResponseRow, Tenant, events, insert_sql, items, response_row, responses, runs, secrets

log = logging.getLogger("rejoinder.store")
T = TypeVar("T")

_MIGRATIONS = Path(__file__).with_name("migrations")
_CHAIN = text(
    """
    WITH RECURSIVE chain(id, previous_response_id, depth) AS (
        SELECT id, previous_response_id, 0 FROM responses WHERE id = :id AND project = :project
        UNION ALL
        SELECT r.id, r.previous_response_id, c.depth + 1
        FROM responses r JOIN chain c ON r.id = c.previous_response_id
    )
    SELECT items.body, chain.previous_response_id FROM chain LEFT JOIN items ON items.response_id = chain.id
    ORDER BY chain.depth DESC, items.role, items.position
    """
)


_REPLACED = ("created_at", "previous_response_id", "status", "owner", "body")


class MissingAncestor(LookupError):
    """A chain reaches a response that is no longer stored (it was deleted): its history is gone."""

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id


class _Write:
    """One response row to write: its final form, or (`begin`) the in-progress form a stream
    shows its client first. A final one `replaces` the in-progress row written before it.
    And/or an `op` on the writer's connection (see `Store.write`; a final form's `also`)."""

    __slots__ = ("loop", "future", "row", "item_rows", "begin", "replaces", "op", "result")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future,
        row: ResponseRow | None,
        item_rows: list[ItemRow],
        begin: bool,
        replaces: bool,
        op=None,
    ) -> None:
        self.loop = loop
        self.future = future
        self.row = row
        self.item_rows = item_rows
        self.begin = begin
        self.replaces = replaces
        self.op: Callable[[Connection], Any] | None = op
        self.result: Any = None  # what `op` returned


class Store:
    def __init__(self, url: str, readers: int = 4, endings: Endings | None = None) -> None:
        """`endings` is how the store ends responses on its own (a dead instance's, a cancelled
        queued run) and the webhook rows their ends make: the gateway's store needs them, a
        command-line tool's that only reads and writes keys does not."""
        self.engine: Engine = connect(url, readers)
        self.sqlite = self.engine.dialect.name == "sqlite"
        database = self.engine.url.database
        self._insert = sqlite_insert if self.sqlite else postgresql_insert  # with ON CONFLICT clauses
        # The writer's statements, as the driver takes them; a final form over its in-progress
        # record is one upsert, cheaper than delete + insert.
        marker = "?" if self.sqlite else "%s"
        self._insert_response = insert_sql(responses, ResponseRow, marker)
        self._upsert_response = self._insert_response + " ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in _REPLACED)
        self._insert_items = insert_sql(items, ItemRow, marker)
        self._file = database if self.sqlite and database not in (None, "", ":memory:") else None
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="rejoinder-db")
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._connection: Connection | None = None
        self._writer = threading.Thread(target=self._write_loop, name="rejoinder-db-writer", daemon=True)
        self._writer.start()
        self.instance = new_id("inst")
        self.stopping = threading.Event()
        self._maintenance: threading.Thread | None = None
        self.endings = endings

    def migrate(self) -> None:
        """Bring the schema to the newest revision, serialized across instances that start
        together: PostgreSQL's advisory lock, or a lock file beside the SQLite database."""
        from alembic import command  # only what migrates imports Alembic (see `server`)
        from alembic.config import Config as AlembicConfig

        with self._migration_lock(), self.engine.begin() as conn:
            if not self.sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7305402)"))
            config = AlembicConfig()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def _migration_lock(self):
        if self._file is None:
            yield
            return
        with open(self._file + ".migrate.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def start_maintenance(self, instance_ttl: float) -> None:
        """Beat this instance's heartbeat, fail the in-progress responses of dead instances
        (see `liveness`), and on SQLite checkpoint the write-ahead log, on a thread of its own."""
        if self.endings is None:
            raise RuntimeError("a store that reaps needs its endings (Store(url, endings=...))")
        args = (self.engine, self.instance, self.endings, instance_ttl, self.stopping)
        self._maintenance = threading.Thread(target=maintain, args=args, name="rejoinder-db-maintenance", daemon=True)
        self._maintenance.start()

    def close(self) -> None:
        self._writes.put(None)
        self._writer.join()
        self.stopping.set()
        if self._maintenance is not None:
            self._maintenance.join()
        self._readers.shutdown()
        self.engine.dispose()

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    def begin(self, response: Response, body: bytes, tenant: Tenant) -> asyncio.Future:
        """Record a response as in progress, owned by this instance, before its client sees its
        id; the returned future settles once that is committed. If this instance dies before the
        response finishes, another instance's maintenance (`liveness.reap`) marks it failed, so the
        id never reads as unknown."""
        return self._enqueue(response, body, tenant, [], begin=True, replaces=False)

    async def save(
        self,
        response: Response,
        body: bytes,
        tenant: Tenant,
        item_rows: list[ItemRow],
        replaces: bool = False,
        also: Callable[[Connection], Any] | None = None,
    ) -> None:
        """Store one finished response (over its in-progress record if `replaces`), and run
        `also` on the connection in the same transaction; returns once it is committed."""
        await self._enqueue(response, body, tenant, item_rows, begin=False, replaces=replaces, op=also)

    def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future:
        """`fn(connection, *args, **kwargs)` on the writer's connection in its next group
        commit; the future settles with what `fn` returned once that is committed (or with what
        `fn` or the commit raised)."""
        future = asyncio.get_running_loop().create_future()
        self._writes.put(_Write(future.get_loop(), future, None, [], False, False, lambda conn: fn(conn, *args, **kwargs)))
        return future

    async def transact(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` in a transaction of its own, off the event loop."""
        return await self._read(self._transact, fn, *args)

    def _transact(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args)

    def _enqueue(self, response: Response, body: bytes, tenant: Tenant, item_rows: list[ItemRow], begin: bool, replaces: bool, op=None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        row = response_row(response, body, response.status, self.instance if begin else None, tenant)
        future = loop.create_future()
        self._writes.put(_Write(loop, future, row, item_rows, begin, replaces, op))
        return future

    def _write_loop(self) -> None:
        while True:
            first = self._writes.get()
            if first is None:
                break
            batch, stop = [first], False
            while True:  # everything that queued up meanwhile joins this transaction
                try:
                    more = self._writes.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            outcome = self._commit(batch)
            if outcome is not None and len(batch) > 1:
                # One bad row must not fail the others: each write again, alone.
                outcomes = [(write, self._commit([write])) for write in batch]
            else:
                outcomes = [(write, outcome) for write in batch]
            for write, failed in outcomes:
                if failed is not None and write.row is not None:
                    log.error("could not store response %s: %s", write.row.id, type(failed).__name__)
            for loop in {write.loop for write in batch}:  # one wake-up per event loop and batch
                loop.call_soon_threadsafe(_settle, [(write.future, failed, write.result) for write, failed in outcomes if write.loop is loop])
            if stop:
                break
        if self._connection is not None:
            self._connection.close()

    def _commit(self, batch: list[_Write]) -> BaseException | None:
        """Write `batch` in one transaction; the failure, if any. A response finished in the
        same batch as its in-progress record is written once, in its final form. Rows go
        straight to the driver (`executemany` of plain statements); `op`s get the SQLAlchemy
        connection, in the same transaction."""
        ops = [write for write in batch if write.op is not None]
        batch = [write for write in batch if write.row is not None]
        finished = {write.row.id for write in batch if not write.begin}
        writes = [write for write in batch if not (write.begin and write.row.id in finished)]
        new = [write.row for write in writes if not write.replaces]
        replacing = [write.row for write in writes if write.replaces]
        try:
            if self._connection is None:  # the writer keeps one connection: no pool round trip per batch
                self._connection = self.engine.connect()
            with self._connection.begin(), contextlib.closing(self._connection.connection.driver_connection.cursor()) as cursor:
                if new:
                    cursor.executemany(self._insert_response, new)
                if replacing:
                    cursor.executemany(self._upsert_response, replacing)
                rows = [row for write in writes for row in write.item_rows]
                if rows:
                    cursor.executemany(self._insert_items, rows)
                for write in ops:
                    write.result = write.op(self._connection)
        except Exception as exc:
            if self._connection is not None:
                self._connection.invalidate()  # a fresh connection for the next batch
                self._connection.close()
                self._connection = None
            return exc
        return None

    def generated_secret(self, name: str) -> str:
        """A random secret kept in the database under `name`: made by the first instance to
        ask, the same for every instance after it."""
        with self.engine.begin() as conn:
            value = conn.execute(select(secrets.c.value).where(secrets.c.name == name)).scalar()
            if value is None:
                insert_secret = self._insert(secrets).on_conflict_do_nothing(index_elements=[secrets.c.name])
                conn.execute(insert_secret.values(name=name, value=token_urlsafe(32)))
                value = conn.execute(select(secrets.c.value).where(secrets.c.name == name)).scalar()
        return value

    async def ping(self) -> None:
        await self._read(self._ping)

    def _ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def get(self, response_id: str, project: str) -> bytes | None:
        return await self._read(self._get, response_id, project)

    def _get(self, response_id: str, project: str) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(select(responses.c.body).where(responses.c.id == response_id, responses.c.project == project)).scalar()

    async def delete(self, response_id: str, project: str) -> bool:
        return await self._read(self._delete, response_id, project)

    def _delete(self, response_id: str, project: str) -> bool:
        """A response, its items and, if it ran in the background, its queue entry and event log.
        The response row goes first, the order a run's own writes lock in; a deadlock with a
        claim (which locks its queue entry first) is retried."""
        for attempt in itertools.count():
            try:
                with self.engine.begin() as conn:
                    found = conn.execute(delete(responses).where(responses.c.id == response_id, responses.c.project == project)).rowcount > 0
                    if not found:
                        return False
                    for table in (items, events, runs):
                        conn.execute(delete(table).where(table.c.response_id == response_id))
                    return found
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == 2:  # deadlock_detected
                    raise

    async def chain(self, response_id: str, project: str) -> list[bytes] | None:
        """Bodies of every item of `response_id` and its predecessors, oldest first; None if
        unknown (to `project`: a response only ever continues one of its own project's)."""
        return await self._read(self._chain, response_id, project)

    def _chain(self, response_id: str, project: str) -> list[bytes] | None:
        with self.engine.connect() as conn:
            rows = conn.execute(_CHAIN, {"id": response_id, "project": project}).all()
        if not rows:
            return None
        if rows[0][1] is not None:  # the oldest response found still points further back
            raise MissingAncestor(rows[0][1])
        return [row[0] for row in rows if row[0] is not None]

    async def items_by_id(self, ids: list[str], project: str) -> dict[str, bytes]:
        """Stored items of `project`'s responses by id."""
        return await self._read(self._items_by_id, ids, project)

    def _items_by_id(self, ids: list[str], project: str) -> dict[str, bytes]:
        query = select(items.c.id, items.c.body).join(responses, responses.c.id == items.c.response_id)
        with self.engine.connect() as conn:
            return {row[0]: row[1] for row in conn.execute(query.where(items.c.id.in_(ids), responses.c.project == project))}

    async def input_items(self, response_id: str, project: str, after: str | None, limit: int, descending: bool) -> tuple[list[Any], bool] | None:
        """A page of a response's input items as `(id, body)` rows and whether more follow;
        None if the response is unknown (to `project`)."""
        return await self._read(self._input_items, response_id, project, after, limit, descending)

    def _input_items(self, response_id: str, project: str, after: str | None, limit: int, descending: bool) -> tuple[list[Any], bool] | None:
        with self.engine.connect() as conn:
            if conn.execute(select(responses.c.id).where(responses.c.id == response_id, responses.c.project == project)).first() is None:
                return None
            mine = (items.c.response_id == response_id, items.c.role == "input")
            query = select(items.c.id, items.c.body).where(*mine)
            if after is not None:
                cursor = select(items.c.position).where(*mine, items.c.id == after).scalar_subquery()
                query = query.where(items.c.position < cursor if descending else items.c.position > cursor)
            order = items.c.position.desc() if descending else items.c.position
            return page_of(conn, query.order_by(order), limit)


def _settle(outcomes: list[tuple[asyncio.Future, BaseException | None, Any]]) -> None:
    for future, outcome, result in outcomes:
        if future.done():
            continue
        if outcome is None:
            future.set_result(result)
        else:
            future.set_exception(outcome)
