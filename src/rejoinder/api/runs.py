"""The HTTP side of background runs: queueing one, following its stream, cancelling it."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from rejoinder.api.replies import SSE_HEADERS, json_response, principal_of, project_of, response_not_found
from rejoinder.engine.background import Runner
from rejoinder.engine.feed import Feed
from rejoinder.engine.follow import follow
from rejoinder.protocol.errors import invalid
from rejoinder.protocol.request import Request
from rejoinder.protocol.response import view
from rejoinder.store import runs
from rejoinder.store.repository import Store

RUNNER = web.AppKey("runner", Runner)
FEED = web.AppKey("feed", Feed)
_CANCEL_WAIT = 5.0  # seconds a cancel waits for the running instance to stop the run


async def create_background(request: web.Request, store: Store, decoded: Request, raw: bytes) -> web.StreamResponse:
    """Queue the run and answer at once: its `queued` form, or its stream from the start."""
    app = request.app
    response, warnings = await app[RUNNER].submit(decoded, principal_of(request), raw)
    headers = {"x-rejoinder-warning": "; ".join(warnings)} if warnings else {}
    if not decoded.body.stream:
        return json_response(view(orjson.dumps(response), decoded.body.include), headers=headers)
    return await _stream(request, store, response["id"], -1, headers)


async def stream_response(request: web.Request, store: Store, response_id: str) -> web.StreamResponse:
    """`GET /v1/responses/{id}?stream=true[&starting_after=N]`: a background run's events."""
    raw = request.query.get("starting_after", "-1")
    try:
        starting_after = int(raw)
    except ValueError:
        raise invalid("starting_after", f"Invalid 'starting_after': expected an integer, got '{raw[:32]}'.") from None
    await _background(
        store, response_id, project_of(request), "stream", "This response cannot be streamed: only responses created with background=true can be."
    )
    return await _stream(request, store, response_id, starting_after, {})


async def _background(store: Store, response_id: str, project: str, param: str | None, refusal: str) -> tuple[str, bytes]:
    """The status and body of a background response; 404 when unknown (to `project`), else a
    400 (`refusal`) for a foreground one."""
    state = await store.transact(runs.state, response_id, project)
    if state is None:
        raise response_not_found(response_id)
    if not orjson.loads(state[1]).get("background"):
        raise invalid(param, refusal)
    return state


async def _stream(request: web.Request, store: Store, response_id: str, starting_after: int, headers: dict[str, str]) -> web.StreamResponse:
    stream = web.StreamResponse(headers={**SSE_HEADERS, **headers})
    await stream.prepare(request)
    try:
        await follow(store, request.app[FEED], response_id, starting_after, stream.write)
        await stream.write_eof()
    except ConnectionError:
        pass  # the follower left; the run goes on
    return stream


async def cancel_response(request: web.Request, store: Store, response_id: str) -> web.Response:
    """Cancel a background run: a queued one ends here, a running one is stopped by its instance
    (this one, or another that sees the flag within `background.poll`). Answers its final form;
    a run that had already ended is returned unchanged."""
    state = await _background(store, response_id, project_of(request), None, "Only responses created with background=true can be cancelled.")
    if state[0] in runs.ACTIVE:
        outcome = await store.transact(runs.cancel, response_id, store.outbox)
        if outcome == "cancelled":
            await request.app[FEED].publish(response_id, runs.QUEUED_LAST_SEQ + 1, b"", True)
        elif outcome == "running":
            request.app[RUNNER].stop(response_id)  # if it runs here; elsewhere its owner sees the flag
        state = await _ended(store, response_id) or state
    return json_response(state[1])


async def _ended(store: Store, response_id: str) -> tuple[str, bytes] | None:
    deadline = time.monotonic() + _CANCEL_WAIT
    while True:
        state = await store.transact(runs.state, response_id)
        if state is None or state[0] not in runs.ACTIVE or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.02)
