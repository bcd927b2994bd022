"""Stored files: their rows, read and written per project. Every function takes an open
connection inside a transaction; an expired file reads as unknown."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, or_, select

from rejoinder.store.paging import page_of
from rejoinder.store.schema import files

_FIELDS = (files.c.id, files.c.filename, files.c.purpose, files.c.media_type, files.c.bytes, files.c.created_at, files.c.expires_at)


class File(NamedTuple):
    """A stored file's description (its bytes are read apart: `contents`)."""

    id: str
    filename: str
    purpose: str
    media_type: str
    bytes: int
    created_at: int
    expires_at: int | None


def _live(project: str) -> Any:
    return (files.c.project == project, or_(files.c.expires_at.is_(None), files.c.expires_at > int(time.time())))


def add(conn: Connection, project: str, file: File, content: bytes) -> None:
    """Store a file; the project's expired files go as it comes."""
    conn.execute(delete(files).where(files.c.project == project, files.c.expires_at <= int(time.time())))
    conn.execute(files.insert().values(project=project, content=content, **file._asdict()))


def get(conn: Connection, project: str, file_id: str) -> File | None:
    row = conn.execute(select(*_FIELDS).where(files.c.id == file_id, *_live(project))).first()
    return File(*row) if row is not None else None


def contents(conn: Connection, project: str, ids: list[str]) -> dict[str, tuple[File, bytes]]:
    """The files of `ids` that the project holds, with their bytes."""
    rows = conn.execute(select(*_FIELDS, files.c.content).where(files.c.id.in_(ids), *_live(project)))
    return {row[0]: (File(*row[:-1]), row[-1]) for row in rows}


def page(conn: Connection, project: str, purpose: str | None, after: str | None, limit: int, descending: bool) -> tuple[list[File], bool]:
    """A page of the project's files by creation time (ids break ties), and whether more follow."""
    query = select(*_FIELDS).where(*_live(project))
    if purpose is not None:
        query = query.where(files.c.purpose == purpose)
    if after is not None:
        cursor = conn.execute(select(files.c.created_at).where(files.c.project == project, files.c.id == after)).scalar()
        if cursor is not None:
            if descending:
                query = query.where((files.c.created_at < cursor) | ((files.c.created_at == cursor) & (files.c.id < after)))
            else:
                query = query.where((files.c.created_at > cursor) | ((files.c.created_at == cursor) & (files.c.id > after)))
    order = (files.c.created_at.desc(), files.c.id.desc()) if descending else (files.c.created_at, files.c.id)
    rows, more = page_of(conn, query.order_by(*order), limit)
    return [File(*row) for row in rows], more


def remove(conn: Connection, project: str, file_id: str) -> bool:
    return conn.execute(delete(files).where(files.c.project == project, files.c.id == file_id)).rowcount > 0
