"""Vector stores in the database: the stores, the files in them (each waits, owned by no
instance, until one claims and ingests it), and their chunks, searched by full text: SQLite's
FTS5 (BM25) or PostgreSQL's tsvector (`ts_rank`). Every function takes an open connection
inside a transaction; a project sees only its own."""

from __future__ import annotations

import re
import time
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update

from rejoinder.store.paging import page_of
from rejoinder.store.schema import files, vector_store_files, vector_stores

_WORD = re.compile(r"\w+")
# Words too common to rank by: left out of a full-text query (unless it holds nothing else), so
# an OR of its words does not match, and score, most of a store. PostgreSQL's `english`
# configuration drops its own list.
STOPWORDS = frozenset(
    "a about all also an and any are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my no not of on or our so than that the their them then there these they this to was we were what when where which who "
    "why will with would you your".split()
)
STATUSES = ("in_progress", "completed", "failed", "cancelled")


class StoreRow(NamedTuple):
    id: str
    name: str | None
    created_at: int
    last_active_at: int
    expires_after: int | None
    metadata: bytes
    usage_bytes: int
    counts: dict[str, int]


class FileRow(NamedTuple):
    file_id: str
    store_id: str
    created_at: int
    status: str
    batch_id: str | None
    attributes: bytes
    chunking: bytes
    usage_bytes: int
    last_error: bytes | None


class Pending(NamedTuple):
    """A file one instance claimed to ingest."""

    project: str
    store_id: str
    file_id: str
    chunking: dict[str, int]


class Hit(NamedTuple):
    store_id: str
    file_id: str
    position: int
    text: str
    score: float  # higher is better; not bounded


_STORE_FIELDS = (
    vector_stores.c.id,
    vector_stores.c.name,
    vector_stores.c.created_at,
    vector_stores.c.last_active_at,
    vector_stores.c.expires_after,
    vector_stores.c.metadata,
)
_FILE_FIELDS = (
    vector_store_files.c.file_id,
    vector_store_files.c.store_id,
    vector_store_files.c.created_at,
    vector_store_files.c.status,
    vector_store_files.c.batch_id,
    vector_store_files.c.attributes,
    vector_store_files.c.chunking,
    vector_store_files.c.usage_bytes,
    vector_store_files.c.last_error,
)


def create(conn: Connection, project: str, store_id: str, name: str | None, expires_after: int | None, metadata: dict[str, str], now: int) -> None:
    row = {"project": project, "id": store_id, "name": name, "created_at": now, "last_active_at": now, "expires_after": expires_after}
    conn.execute(insert(vector_stores).values(**row, metadata=orjson.dumps(metadata)))


def get(conn: Connection, project: str, store_id: str) -> StoreRow | None:
    found = conn.execute(select(*_STORE_FIELDS).where(vector_stores.c.project == project, vector_stores.c.id == store_id)).first()
    return _with_counts(conn, project, found) if found is not None else None


def _with_counts(conn: Connection, project: str, found: Any) -> StoreRow:
    counts, used, _ = _tally(conn, vector_store_files.c.project == project, vector_store_files.c.store_id == found[0])
    return StoreRow(*found, used, counts)


def _tally(conn: Connection, *where: Any) -> tuple[dict[str, int], int, int | None]:
    """The files `where` picks: their counts by status, the bytes they use, and when the first
    was added (None: there are none)."""
    columns = (vector_store_files.c.status, func.count(), func.sum(vector_store_files.c.usage_bytes), func.min(vector_store_files.c.created_at))
    rows = conn.execute(select(*columns).where(*where).group_by(vector_store_files.c.status)).all()
    counts = {status: 0 for status in STATUSES}
    for status, count, _, _ in rows:
        counts[status] = count
    return counts, sum(int(row[2] or 0) for row in rows), min((row[3] for row in rows), default=None)


def page(conn: Connection, project: str, after: str | None, limit: int, descending: bool) -> tuple[list[StoreRow], bool]:
    query = select(*_STORE_FIELDS).where(vector_stores.c.project == project)
    if after is not None:
        query = query.where(vector_stores.c.id < after if descending else vector_stores.c.id > after)  # ids are time-ordered
    rows, more = page_of(conn, query.order_by(vector_stores.c.id.desc() if descending else vector_stores.c.id), limit)
    return [_with_counts(conn, project, row) for row in rows], more


def change(conn: Connection, project: str, store_id: str, values: dict[str, Any]) -> bool:
    if "metadata" in values:
        values = {**values, "metadata": orjson.dumps(values["metadata"])}
    where = (vector_stores.c.project == project, vector_stores.c.id == store_id)
    return conn.execute(update(vector_stores).where(*where).values(**values, last_active_at=int(time.time()))).rowcount > 0


def expiry(conn: Connection, project: str, store_id: str) -> tuple[int, int | None] | None:
    """A store's last activity and days to live after it (None: it never expires); None for an unknown store."""
    where = (vector_stores.c.project == project, vector_stores.c.id == store_id)
    row = conn.execute(select(vector_stores.c.last_active_at, vector_stores.c.expires_after).where(*where)).first()
    return (row[0], row[1]) if row is not None else None


def remove(conn: Connection, project: str, store_id: str) -> bool:
    if conn.execute(delete(vector_stores).where(vector_stores.c.project == project, vector_stores.c.id == store_id)).rowcount == 0:
        return False
    conn.execute(delete(vector_store_files).where(vector_store_files.c.project == project, vector_store_files.c.store_id == store_id))
    conn.execute(text("DELETE FROM chunks WHERE project = :project AND store_id = :store"), {"project": project, "store": store_id})
    return True


class UnknownFile(LookupError):
    """A file id the project does not hold."""


def add_files(conn: Connection, project: str, store_id: str, wanted: list[Any], batch_id: str | None, now: int) -> None:
    """Put files in a store, to be ingested (again, if they were in it already)."""
    ids = [want.file_id for want in wanted]
    held = dict(conn.execute(select(files.c.id, files.c.filename).where(files.c.project == project, files.c.id.in_(ids))).all())
    for file_id in ids:
        if file_id not in held:
            raise UnknownFile(file_id)
    for want in wanted:
        remove_file(conn, project, store_id, want.file_id)
    rows = [
        {
            "project": project,
            "store_id": store_id,
            "file_id": want.file_id,
            "created_at": now,
            "status": "in_progress",
            "batch_id": batch_id,
            "attributes": orjson.dumps(want.attributes),
            "chunking": orjson.dumps(want.chunking),
            "filename": held[want.file_id],
        }
        for want in wanted
    ]
    conn.execute(insert(vector_store_files), rows)
    conn.execute(update(vector_stores).where(vector_stores.c.project == project, vector_stores.c.id == store_id).values(last_active_at=now))


def get_file(conn: Connection, project: str, store_id: str, file_id: str) -> FileRow | None:
    row = conn.execute(select(*_FILE_FIELDS).where(*_file(project, store_id, file_id))).first()
    return FileRow(*row) if row is not None else None


def _file(project: str, store_id: str, file_id: str) -> tuple:
    return (vector_store_files.c.project == project, vector_store_files.c.store_id == store_id, vector_store_files.c.file_id == file_id)


def page_files(
    conn: Connection, project: str, store_id: str, status: str | None, batch_id: str | None, after: str | None, limit: int, descending: bool
) -> tuple[list[FileRow], bool]:
    query = select(*_FILE_FIELDS).where(vector_store_files.c.project == project, vector_store_files.c.store_id == store_id)
    if status is not None:
        query = query.where(vector_store_files.c.status == status)
    if batch_id is not None:
        query = query.where(vector_store_files.c.batch_id == batch_id)
    if after is not None:
        query = query.where(vector_store_files.c.file_id < after if descending else vector_store_files.c.file_id > after)
    rows, more = page_of(conn, query.order_by(vector_store_files.c.file_id.desc() if descending else vector_store_files.c.file_id), limit)
    return [FileRow(*row) for row in rows], more


def set_attributes(conn: Connection, project: str, store_id: str, file_id: str, attributes: dict[str, Any]) -> bool:
    return conn.execute(update(vector_store_files).where(*_file(project, store_id, file_id)).values(attributes=orjson.dumps(attributes))).rowcount > 0


def remove_file(conn: Connection, project: str, store_id: str, file_id: str) -> bool:
    """A file out of a store, with its chunks (the file itself stays in the Files API)."""
    found = conn.execute(delete(vector_store_files).where(*_file(project, store_id, file_id))).rowcount > 0
    conn.execute(
        text("DELETE FROM chunks WHERE project = :project AND store_id = :store AND file_id = :file"), {"project": project, "store": store_id, "file": file_id}
    )
    if found:
        _changed(conn, project, store_id)
    return found


def batch_counts(conn: Connection, project: str, store_id: str, batch_id: str) -> tuple[int, dict[str, int]] | None:
    """A batch's creation time and its files' counts by status; None for an unknown batch."""
    counts, _, created_at = _tally(conn, *_batch(project, store_id, batch_id))
    return (created_at, counts) if created_at is not None else None


def cancel_batch(conn: Connection, project: str, store_id: str, batch_id: str) -> None:
    where = (*_batch(project, store_id, batch_id), vector_store_files.c.status == "in_progress")
    conn.execute(update(vector_store_files).where(*where).values(status="cancelled", owner=None))


def _batch(project: str, store_id: str, batch_id: str) -> tuple:
    return (vector_store_files.c.project == project, vector_store_files.c.store_id == store_id, vector_store_files.c.batch_id == batch_id)


# Ingestion: claimed by one instance, finished or failed by it; a dead instance's claims are
# released by `liveness.reap`.

_WAITING = select(vector_store_files.c.project, vector_store_files.c.store_id, vector_store_files.c.file_id, vector_store_files.c.chunking).where(
    vector_store_files.c.status == "in_progress", vector_store_files.c.owner.is_(None)
)
_CLAIM = (
    update(vector_store_files)
    .where(
        vector_store_files.c.project == bindparam("p"),
        vector_store_files.c.store_id == bindparam("s"),
        vector_store_files.c.file_id == bindparam("f"),
        vector_store_files.c.owner.is_(None),
        vector_store_files.c.status == "in_progress",
    )
    .values(owner=bindparam("instance"))
)


def claim(conn: Connection, instance: str, limit: int) -> list[Pending]:
    """Up to `limit` files waiting to be ingested, now owned by `instance`."""
    claimed = []
    for project, store_id, file_id, chunking in conn.execute(_WAITING.limit(limit)).all():
        if conn.execute(_CLAIM, {"p": project, "s": store_id, "f": file_id, "instance": instance}).rowcount:
            claimed.append(Pending(project, store_id, file_id, orjson.loads(chunking)))
    return claimed


def content_of(conn: Connection, project: str, file_id: str) -> tuple[str, str, bytes] | None:
    """A file's name, media type and bytes."""
    row = conn.execute(select(files.c.filename, files.c.media_type, files.c.content).where(files.c.project == project, files.c.id == file_id)).first()
    return (row[0], row[1], row[2]) if row is not None else None


def finish(conn: Connection, pending: Pending, instance: str, chunks: list[str], vectors: list[bytes | None], error: dict[str, str] | None) -> None:
    """An ingestion's end: its chunks (with their vectors) and `completed`, or `failed` with its
    error; nothing if the file left the store (or its batch was cancelled) meanwhile."""
    where = (*_file(pending.project, pending.store_id, pending.file_id), vector_store_files.c.owner == instance, vector_store_files.c.status == "in_progress")
    status = "failed" if error is not None else "completed"
    size = sum(len(chunk.encode()) for chunk in chunks)
    values = {"status": status, "owner": None, "usage_bytes": size, "last_error": orjson.dumps(error) if error is not None else None}
    if conn.execute(update(vector_store_files).where(*where).values(**values)).rowcount == 0:
        return
    if chunks:
        rows = [
            {"t": chunk, "p": pending.project, "s": pending.store_id, "f": pending.file_id, "n": i, "v": vector}
            for i, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
        ]
        conn.execute(text("INSERT INTO chunks (text, project, store_id, file_id, position, vector) VALUES (:t, :p, :s, :f, :n, :v)"), rows)
        _changed(conn, pending.project, pending.store_id)


def _changed(conn: Connection, project: str, store_id: str) -> None:
    """The store's chunks changed: a copy of its vectors held anywhere is stale."""
    where = (vector_stores.c.project == project, vector_stores.c.id == store_id)
    conn.execute(update(vector_stores).where(*where).values(revision=vector_stores.c.revision + 1))


def revisions(conn: Connection, project: str, store_ids: list[str]) -> dict[str, int]:
    rows = conn.execute(select(vector_stores.c.id, vector_stores.c.revision).where(vector_stores.c.project == project, vector_stores.c.id.in_(store_ids)))
    return {row[0]: row[1] for row in rows}


def chunk_vectors(conn: Connection, project: str, store_id: str) -> list[tuple[str, int, str, bytes | None]]:
    """Every chunk of a store: `(file id, position, text, vector)`."""
    statement = text("SELECT file_id, position, text, vector FROM chunks WHERE project = :project AND store_id = :store")
    return [(row[0], int(row[1]), row[2], row[3]) for row in conn.execute(statement, {"project": project, "store": store_id})]


def analyze(conn: Connection) -> None:
    """On PostgreSQL, the chunks' statistics brought up to date after ingestion: until
    autovacuum gets to a new table, its planner, with none, searched 10,000 chunks in 22 ms at
    p50 instead of 12 (bench/retrieval.py). SQLite's FTS5 needs none."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("ANALYZE chunks")


# Search

_SQLITE_SEARCH = """
SELECT store_id, file_id, position, text, -bm25(chunks) AS score FROM chunks
WHERE chunks MATCH :query AND project = :project AND store_id IN ({stores})
ORDER BY bm25(chunks) LIMIT :limit
"""
_POSTGRES_SEARCH = """
SELECT c.store_id, c.file_id, c.position, c.text, best.score FROM (
    SELECT store_id, file_id, position, ts_rank(words, query) AS score FROM chunks, to_tsquery('english', :query) query
    WHERE words @@ query AND project = :project AND store_id IN ({stores})
    ORDER BY score DESC LIMIT :limit
) best JOIN chunks c ON c.project = :project AND c.store_id = best.store_id AND c.file_id = best.file_id AND c.position = best.position
ORDER BY best.score DESC
"""  # the texts of the best only: carrying every match's text through the sort cost 4x


def search(conn: Connection, project: str, store_ids: list[str], query: str, limit: int) -> list[Hit]:
    """The chunks of the stores that best match any word of `query`, best first."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    words = ([word for word in words if word not in STOPWORDS] or words)[:64]
    if not words or not store_ids:
        return []
    stores = {f"store{i}": store_id for i, store_id in enumerate(store_ids)}
    sqlite = conn.dialect.name == "sqlite"
    matched = " OR ".join(f'"{word}"' for word in words) if sqlite else " | ".join(words)
    statement = (_SQLITE_SEARCH if sqlite else _POSTGRES_SEARCH).format(stores=", ".join(f":{name}" for name in stores))
    if not sqlite:  # through the GIN index: the planner, which prices matching a tsvector low, would scan every chunk (5x slower)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = conn.execute(text(statement), {"query": matched, "project": project, "limit": limit, **stores}).all()
    return [Hit(row[0], row[1], int(row[2]), row[3], float(row[4])) for row in rows]


def described(conn: Connection, project: str, store_ids: list[str], file_ids: list[str]) -> dict[tuple[str, str], tuple[str, bytes]]:
    """`(store, file)` → the file's name and its attributes in that store."""
    if not file_ids:
        return {}
    query = select(vector_store_files.c.store_id, vector_store_files.c.file_id, vector_store_files.c.filename, vector_store_files.c.attributes).where(
        vector_store_files.c.project == project, vector_store_files.c.store_id.in_(store_ids), vector_store_files.c.file_id.in_(file_ids)
    )  # (the name is kept with the store's file: a join to `files` read their wide rows, as long as the search itself)
    return {(row[0], row[1]): (row[2], row[3]) for row in conn.execute(query)}
