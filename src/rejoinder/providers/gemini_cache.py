"""Gemini's explicit context caching (`cachedContents`), for a model with
`prompt_caching: cached_contents`.

Gemini caches repeated prefixes by itself (implicit caching, reported as
`cachedContentTokenCount`), but gives no guarantee; an explicit cache is billed at the cached
rate every time. A turn's stable prefix is its `systemInstruction`, `tools` and `toolConfig`
(they lead every request of an agent's session unchanged), so that is what is cached: created
once per prefix, model and `prompt_cache_key`, kept for its TTL (five minutes, or an hour when
the request asks for longer retention), and named by later requests in `cachedContent`, which
then leave those fields out (Gemini refuses them beside a cache). A prefix shorter than the
model's minimum is sent whole, as is every request while a cache cannot be made (that is
tried again once the TTL has passed). The entries live in this instance's memory: each
instance makes its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import orjson

from rejoinder.protocol.errors import ApiError
from rejoinder.providers.base import Settings
from rejoinder.providers.failures import read_json
from rejoinder.providers.http import Upstream
from rejoinder.providers.translate import long_cache, minimum_tokens

log = logging.getLogger("rejoinder.providers")

CACHED = ("systemInstruction", "tools", "toolConfig")  # the prefix a cache holds, and the fields a request naming it leaves out
MINIMUM_TOKENS = (("gemini-2.5-pro", 4096), ("gemini-3-pro", 4096))  # by the longest prefix of the model's name
DEFAULT_MINIMUM = 1024
_MARGIN = 30.0  # seconds before its expiry an entry is no longer named (a request in flight must not outlive it)
_MAX_ENTRIES = 1024


class ContextCache:
    def __init__(self, base: str, upstream: Upstream) -> None:
        self.url = base + "/cachedContents"
        self.upstream = upstream
        self.entries: dict[str, tuple[str | None, float]] = {}  # key → (its name, or None when it could not be made; until when)
        self.making: dict[str, asyncio.Task[str | None]] = {}

    async def applied(self, body: dict[str, Any], model: str, settings: Settings) -> dict[str, Any]:
        """`body` naming the cache of its prefix (made now if need be), or as it was."""
        prefix = {name: body[name] for name in CACHED if name in body}
        encoded = orjson.dumps(prefix, option=orjson.OPT_SORT_KEYS)
        if len(encoded) // 4 < minimum_tokens(MINIMUM_TOKENS, model, DEFAULT_MINIMUM):  # the estimate the fakes and Anthropic's cache use: bytes over four
            return body
        key = hashlib.sha256(b"\0".join((model.encode(), (settings.prompt_cache_key or "").encode(), encoded))).hexdigest()
        name = await self._name(key, model, prefix, 3600 if long_cache(settings) else 300)
        if name is None:
            return body
        return {**{field: value for field, value in body.items() if field not in CACHED}, "cachedContent": name}

    async def _name(self, key: str, model: str, prefix: dict[str, Any], ttl: int) -> str | None:
        name, until = self.entries.get(key, (None, 0.0))
        if until > time.monotonic():
            return name
        task = self.making.get(key)
        if task is None:  # one request makes it; the others at the same time wait for it
            task = self.making[key] = asyncio.ensure_future(self._make(key, model, prefix, ttl))
            task.add_done_callback(lambda _: self.making.pop(key, None))
        return await asyncio.shield(task)

    async def _make(self, key: str, model: str, prefix: dict[str, Any], ttl: int) -> str | None:
        made = time.monotonic()
        try:
            async with self.upstream.call(self.url, orjson.dumps({"model": f"models/{model}", **prefix, "ttl": f"{ttl}s"}), stream=False) as reply:
                answer = read_json(await reply.body())
            name = answer.get("name") if isinstance(answer, dict) else None
            if not isinstance(name, str) or not name.startswith("cachedContents/"):
                raise ApiError(502, "The upstream's cachedContents answer had no name.", type="server_error", code="upstream_error")
        except ApiError as exc:
            log.warning("%s: no context cache (%s); requests go whole for %d s", model, exc.code or exc.status, ttl)
            name = None
        if len(self.entries) >= _MAX_ENTRIES:
            now = time.monotonic()
            self.entries = {k: entry for k, entry in self.entries.items() if entry[1] > now}
        self.entries[key] = (name, made + ttl - _MARGIN)
        return name
