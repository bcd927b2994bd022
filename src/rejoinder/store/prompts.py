"""Prompt templates made through the API, in the database. Every function takes an open
connection inside a transaction; versions are numbered 1, 2, … and never change."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, insert, select, update

from rejoinder.store.schema import prompt_versions, prompts


class Version(NamedTuple):
    prompt_id: str
    version: int
    default_version: int
    template: bytes
    created_at: int


def _mine(prompt_id: str, project: str) -> Any:
    """A prompt of `project`'s: to any other, it does not exist."""
    return (prompts.c.id == prompt_id) & (prompts.c.project == project)


def _its(prompt_id: str, project: str) -> Any:
    """The versions of a prompt of `project`'s."""
    return (prompt_versions.c.prompt_id == prompt_id) & (prompt_versions.c.project == project)


def create(conn: Connection, prompt_id: str, project: str, template: bytes, created_at: int) -> Version:
    """A new prompt at version 1 (an id already taken raises `IntegrityError`)."""
    conn.execute(insert(prompts), {"id": prompt_id, "project": project, "default_version": 1, "created_at": created_at})
    conn.execute(insert(prompt_versions), {"project": project, "prompt_id": prompt_id, "version": 1, "template": template, "created_at": created_at})
    return Version(prompt_id, 1, 1, template, created_at)


def add_version(conn: Connection, prompt_id: str, project: str, template: bytes, created_at: int) -> Version | None:
    """The next version, not made the default; None if there is no such prompt."""
    default = conn.execute(select(prompts.c.default_version).where(_mine(prompt_id, project)).with_for_update()).scalar()
    if default is None:
        return None
    version = conn.execute(select(func.max(prompt_versions.c.version)).where(_its(prompt_id, project))).scalar() + 1
    conn.execute(insert(prompt_versions), {"project": project, "prompt_id": prompt_id, "version": version, "template": template, "created_at": created_at})
    return Version(prompt_id, version, default, template, created_at)


def get(conn: Connection, prompt_id: str, project: str, version: int | None) -> Version | None:
    """A version (the default one without `version`); None if there is none."""
    default = conn.execute(select(prompts.c.default_version).where(_mine(prompt_id, project))).scalar()
    if default is None:
        return None
    query = select(prompt_versions.c.template, prompt_versions.c.created_at, prompt_versions.c.version)
    row = conn.execute(query.where(_its(prompt_id, project), prompt_versions.c.version == (version or default))).first()
    return Version(prompt_id, row.version, default, row.template, row.created_at) if row is not None else None


def versions(conn: Connection, prompt_id: str, project: str) -> list[Version]:
    """Every version of a prompt of `project`'s, oldest first (none: no such prompt)."""
    default = conn.execute(select(prompts.c.default_version).where(_mine(prompt_id, project))).scalar()
    if default is None:
        return []
    query = select(prompt_versions.c.version, prompt_versions.c.template, prompt_versions.c.created_at).where(_its(prompt_id, project))
    return [Version(prompt_id, row.version, default, row.template, row.created_at) for row in conn.execute(query.order_by(prompt_versions.c.version))]


def listing(conn: Connection, project: str) -> list[Version]:
    """Every prompt of `project` at its default version, by id."""
    same = (prompt_versions.c.project == prompts.c.project) & (prompt_versions.c.prompt_id == prompts.c.id)
    joined = prompts.join(prompt_versions, same & (prompt_versions.c.version == prompts.c.default_version))
    query = select(prompts.c.id, prompts.c.default_version, prompt_versions.c.template, prompt_versions.c.created_at).select_from(joined)
    rows = conn.execute(query.where(prompts.c.project == project).order_by(prompts.c.id))
    return [Version(row.id, row.default_version, row.default_version, row.template, row.created_at) for row in rows]


def set_default(conn: Connection, prompt_id: str, project: str, version: int) -> Version | None:
    """Make `version` the default; None if there is no such prompt or version."""
    if get(conn, prompt_id, project, version) is None:
        return None
    conn.execute(update(prompts).where(_mine(prompt_id, project)).values(default_version=version))
    return get(conn, prompt_id, project, None)


def remove(conn: Connection, prompt_id: str, project: str) -> bool:
    if conn.execute(delete(prompts).where(_mine(prompt_id, project))).rowcount == 0:
        return False
    conn.execute(delete(prompt_versions).where(_its(prompt_id, project)))
    return True
