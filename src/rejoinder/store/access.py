"""Projects and their API keys in the database. Every function takes an open connection inside
a transaction; every change moves `access_revision` on in the same transaction, which is how
the other instances learn that a key they hold was revoked (see `engine.access.principals`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, insert, select, text, update

from rejoinder.store.paging import page_of
from rejoinder.store.schema import access_revision, api_keys, projects


class Project(NamedTuple):
    id: str
    name: str
    created_at: int
    archived_at: int | None
    limits: bytes  # JSON (`protocol.access.Limits`)
    managed: str


class Key(NamedTuple):
    id: str
    project: str
    name: str
    redacted_value: str
    created_at: int
    limits: bytes
    managed: str


class Holder(NamedTuple):
    """What a key's digest opens: the key, its project, and both their limits."""

    key_id: str
    project: str
    key_limits: bytes
    project_limits: bytes


_PROJECT = [projects.c[name] for name in Project._fields]
_KEY = [api_keys.c[name] for name in Key._fields]


def revision(conn: Connection) -> int:
    return conn.execute(select(access_revision.c.revision)).scalar_one()


def _changed(conn: Connection) -> None:
    conn.execute(update(access_revision).values(revision=access_revision.c.revision + 1))


def holder(conn: Connection, digest: str) -> Holder | None:
    """The key whose value has this SHA-256, if its project is active."""
    joined = api_keys.join(projects, projects.c.id == api_keys.c.project)
    query = select(api_keys.c.id, api_keys.c.project, api_keys.c.limits, projects.c.limits).select_from(joined)
    row = conn.execute(query.where(api_keys.c.digest == digest, projects.c.archived_at.is_(None))).first()
    return Holder(*row) if row is not None else None


def create_project(conn: Connection, project: Project) -> Project:
    conn.execute(insert(projects), project._asdict())
    _changed(conn)
    return project


def project(conn: Connection, project_id: str) -> Project | None:
    row = conn.execute(select(*_PROJECT).where(projects.c.id == project_id)).first()
    return Project(*row) if row is not None else None


def project_page(conn: Connection, after: str | None, limit: int, archived: bool) -> tuple[list[Project], bool]:
    """Projects by id after `after`, archived ones only if asked, and whether more follow."""
    query = select(*_PROJECT)
    if not archived:
        query = query.where(projects.c.archived_at.is_(None))
    if after is not None:
        query = query.where(projects.c.id > after)
    rows, more = page_of(conn, query.order_by(projects.c.id), limit)
    return [Project(*row) for row in rows], more


def update_project(conn: Connection, project_id: str, **values: Any) -> Project | None:
    """Set `values` (name, limits, archived_at) on a project; None if there is none."""
    if conn.execute(update(projects).where(projects.c.id == project_id).values(**values)).rowcount == 0:
        return None
    _changed(conn)
    return project(conn, project_id)


def create_key(conn: Connection, key: Key, digest: str) -> Key:
    conn.execute(insert(api_keys), {**key._asdict(), "digest": digest})
    _changed(conn)
    return key


def key(conn: Connection, project_id: str, key_id: str) -> Key | None:
    row = conn.execute(select(*_KEY).where(api_keys.c.project == project_id, api_keys.c.id == key_id)).first()
    return Key(*row) if row is not None else None


def key_page(conn: Connection, project_id: str, after: str | None, limit: int) -> tuple[list[Key], bool]:
    query = select(*_KEY).where(api_keys.c.project == project_id)
    if after is not None:
        query = query.where(api_keys.c.id > after)
    rows, more = page_of(conn, query.order_by(api_keys.c.id), limit)
    return [Key(*row) for row in rows], more


def all_keys(conn: Connection) -> list[Key]:
    return [Key(*row) for row in conn.execute(select(*_KEY).order_by(api_keys.c.project, api_keys.c.id))]


def delete_key(conn: Connection, project_id: str | None, key_id: str) -> bool:
    """Revoke a key (of `project_id`, or of any project when it is None)."""
    query = delete(api_keys).where(api_keys.c.id == key_id, api_keys.c.managed == "api")
    if project_id is not None:
        query = query.where(api_keys.c.project == project_id)
    if conn.execute(query).rowcount == 0:
        return False
    _changed(conn)
    return True


def declare(conn: Connection, declared: list[tuple[Project, list[tuple[Key, str]]]]) -> None:
    """Make the config file's projects and keys (`managed` "config") exactly what it declares:
    new ones are made, changed ones rewritten, ones no longer declared removed (their keys
    stop working; a project's stored objects stay)."""
    if conn.dialect.name == "postgresql":  # instances starting together take turns
        conn.execute(text("SELECT pg_advisory_xact_lock(7305403)"))
    conn.execute(delete(api_keys).where(api_keys.c.managed == "config"))
    kept = [entry.id for entry, _ in declared]
    conn.execute(delete(projects).where(projects.c.managed == "config", projects.c.id.not_in(kept)))
    for entry, keys in declared:
        if project(conn, entry.id) is None:
            conn.execute(insert(projects), entry._asdict())
        else:
            conn.execute(update(projects).where(projects.c.id == entry.id).values(name=entry.name, limits=entry.limits, managed="config", archived_at=None))
        if keys:
            conn.execute(insert(api_keys), [{**declared_key._asdict(), "digest": digest} for declared_key, digest in keys])
    _changed(conn)
