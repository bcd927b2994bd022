"""Who is asking: a bearer token made into a `Principal` (a project, maybe a key, what they may
use), with the keys already seen kept in memory.

Keys are stored as the SHA-256 of their value (`store.access`); a known key costs a hash and a
dict lookup, an unknown one a database read, once: a refused token is remembered too, so a
client repeating a wrong key costs no more reads. Every instance reads the access revision
twice a second and forgets every key it holds, known or refused, when it moved, so a key revoked
anywhere stops working everywhere within `_POLL` seconds and one read (and a new one works).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from typing import NamedTuple

import msgspec

from rejoinder.config import ProjectConfig
from rejoinder.protocol.access import Limits, limits_of
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import new_id
from rejoinder.store import access
from rejoinder.store.repository import Store
from rejoinder.store.schema import DEFAULT_PROJECT, Tenant

log = logging.getLogger("rejoinder.access")

KEY_PREFIX = "sk-rj-"
_POLL = 0.5  # seconds between reads of the access revision
_HELD = 100_000  # tokens held, known and refused each; past that, forgotten all at once
_decode_limits = msgspec.json.Decoder(Limits).decode


class Window(NamedTuple):
    """One limited scope of a principal: `key:ID` or `project:ID`, its per-minute limits, and
    its spend budget (micro-dollars) per `period` (`day` or `month`)."""

    scope: str
    rpm: int | None
    tpm: int | None
    budget: int | None = None
    period: str = "month"


class Principal(NamedTuple):
    project: str
    key_id: str | None  # None: the master key, or anyone on a gateway without one
    admin: bool  # may use the organization API
    allowed: tuple[tuple[str, ...], ...] = ()  # model patterns: each list must allow a model
    windows: tuple[Window, ...] = ()

    @property
    def tenant(self) -> Tenant:
        """Whose what it stores is."""
        return Tenant(self.project, self.key_id)

    def allows(self, model: str) -> bool:
        return all(any(model == p or (p.endswith("*") and model.startswith(p[:-1])) for p in patterns) for patterns in self.allowed)


OPEN = Principal(DEFAULT_PROJECT, None, True)


def make_key(project: str, name: str, limits: Limits) -> tuple[access.Key, str, str]:
    """A new key of `project`'s: its row, its value (shown once) and its digest (what is stored)."""
    value = KEY_PREFIX + secrets.token_urlsafe(32)
    return access.Key(new_id("key"), project, name, redacted(value), int(time.time()), msgspec.json.encode(limits), "api"), value, digest(value)


def declared_key(project: str, name: str, value: str, limits: Limits) -> tuple[access.Key, str]:
    """A key the config file declares: its row (its id made from its project and name, the
    same at every start) and its digest."""
    key_id = "key_" + hashlib.sha256(f"{project}/{name}".encode()).hexdigest()[:32]
    return access.Key(key_id, project, name, redacted(value), 0, msgspec.json.encode(limits), "config"), digest(value)


def declared(projects: list[ProjectConfig]) -> list[tuple[access.Project, list[tuple[access.Key, str]]]]:
    """The config file's projects and keys, as `store.access.declare` makes them."""
    return [
        (
            access.Project(p.id, p.name, int(time.time()), None, msgspec.json.encode(limits_of(p)), "config"),
            [declared_key(p.id, key.name, key.value, limits_of(key)) for key in p.keys],
        )
        for p in projects
    ]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def redacted(value: str) -> str:
    return f"{value[: len(KEY_PREFIX) + 4]}…{value[-4:]}"


def principal_of(holder: access.Holder) -> Principal:
    own, shared = _decode_limits(holder.key_limits), _decode_limits(holder.project_limits)
    allowed = tuple(tuple(limits.allowed_models) for limits in (own, shared) if limits.allowed_models is not None)
    windows = tuple(
        Window(scope, limits.rpm, limits.tpm, round(limits.budget * 1e6) if limits.budget is not None else None, limits.budget_period)
        for scope, limits in ((f"key:{holder.key_id}", own), (f"project:{holder.project}", shared))
        if limits.rpm is not None or limits.tpm is not None or limits.budget is not None
    )
    return Principal(holder.project, holder.key_id, False, allowed, windows)


def missing_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="missing_api_key",
    )


class Access:
    def __init__(self, store: Store, master_key: str | None) -> None:
        self.store = store
        self.master = master_key.encode() if master_key else None
        self.known: dict[str, Principal] = {}
        self.refused: set[str] = set()
        self.revision: int | None = None
        self.task: asyncio.Task | None = None

    async def principal(self, authorization: str | None, project: str | None) -> Principal:
        """The principal an `Authorization` header (and an `OpenAI-Project` header) stands for;
        a 401 when it stands for none."""
        if not authorization:
            if self.master is not None:
                raise missing_key()
            return await self._as_admin(project)
        token = authorization[7:] if authorization[:7].lower() == "bearer " else authorization
        # aiohttp keeps undecodable header bytes as surrogates: encode them back, never fail on them
        raw = token.encode("utf-8", "surrogateescape")
        if self.master is not None and hmac.compare_digest(raw, self.master):
            return await self._as_admin(project)
        if self.master is None and not token.startswith(KEY_PREFIX):
            return await self._as_admin(project)  # an open gateway: any other token is no key at all
        found = self.known.get(token)
        if found is None:
            known, refused = self.known, self.refused
            if token not in refused:
                holder = await self.store.transact(access.holder, digest(token))
                found = principal_of(holder) if holder is not None else None
            if found is None:
                if refused is self.refused and len(refused) < _HELD:  # not forgotten meanwhile: the read may predate a new key
                    refused.add(token)
                elif refused is self.refused:
                    refused.clear()
                raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
            if known is self.known and len(known) < _HELD:  # not forgotten meanwhile: the read may predate a revocation
                known[token] = found
        if project is not None and project != found.project:
            raise ApiError(401, f"The API key does not belong to project '{project[:64]}' (the OpenAI-Project header).", code="mismatched_project")
        return found

    async def _as_admin(self, project: str | None) -> Principal:
        """The master key acts in the default project, or in the one `OpenAI-Project` names."""
        if project is None or project == DEFAULT_PROJECT:
            return OPEN
        found = await self.store.transact(access.project, project)
        if found is None or found.archived_at is not None:
            raise ApiError(401, f"No active project '{project[:64]}' (the OpenAI-Project header).", code="invalid_project")
        return Principal(project, None, True)

    def changed(self) -> None:
        """Projects or keys changed here: forget every key held (the others do at their next read)."""
        self.known, self.refused = {}, set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _watch(self) -> None:
        while True:
            try:
                revision = await self.store.transact(access.revision)
                if revision != self.revision:
                    self.changed()
                    self.revision = revision
            except Exception as exc:  # keys already known keep working while the database is away
                log.warning("access revision unreadable: %s", type(exc).__name__)
            await asyncio.sleep(_POLL)
