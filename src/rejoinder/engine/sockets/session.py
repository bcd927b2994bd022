"""One WebSocket connection's responses: its lanes, the responses it remembers, its steering.

WebSocket mode (see `api.sockets`) carries `response.create` requests, each the body of a
`POST /v1/responses` plus `stream_id` (its lane) and `generate`. Requests on one lane run one
after another, in the order they came; lanes run side by side, up to `websocket.max_streams`.
Each event goes out as one text frame carrying its lane's `stream_id`; a request that cannot
start is answered with an `error` frame, and the connection goes on.

The connection remembers the context (the chain before, the input, the output) of its latest
responses, stored or not: a turn that continues one of them reads nothing from the database,
and a `store: false` chain works at all. A continuation that fails forgets the response it
continued, as OpenAI's connection-local cache does; a reconnect forgets everything.

Steering (`response.steer`) is in `engine.sockets.steering`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson
from msgspec import Meta, Struct

from rejoinder.config import WebSocketConfig
from rejoinder.engine.access import Limiter, Principal
from rejoinder.engine.context import Prompts
from rejoinder.engine.engine import Engine
from rejoinder.engine.sinks import Stream
from rejoinder.engine.sockets import steering
from rejoinder.protocol.checks import validation_error
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.items import Item
from rejoinder.protocol.request import decode_create_response

log = logging.getLogger("rejoinder.sockets")

Send = Callable[[bytes], Awaitable[None]]
"""Sends one text frame (a JSON object) to the client."""


class Frame(Struct):
    """What the gateway reads of every client frame before it knows its kind."""

    type: str
    stream_id: Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.-]+\Z")] | None = None
    generate: bool = True
    background: bool | None = None


_frame = msgspec.json.Decoder(Frame)


class Job(NamedTuple):
    """A `response.create` waiting in its lane: the frame as sent (or, `expanded`, as it runs:
    its `prompt` applied), and the steering input it carries first (a steered response's
    successor's, or input that waited for tool output)."""

    raw: bytes
    stream_id: str | None
    generate: bool
    steers: list[steering.Steer]
    expanded: bool = False


class Session:
    def __init__(self, engine: Engine, prompts: Prompts, metrics: Any, limiter: Limiter, principal: Principal, config: WebSocketConfig, send: Send) -> None:
        self.engine = engine
        self.prompts = prompts
        self.metrics = metrics  # `api.observe.Metrics`: each turn is counted like an HTTP one
        self.limiter = limiter  # each turn counts as a request against the principal's limits
        self.principal = principal  # who opened the connection: every turn is theirs
        self.config = config
        self.send = send
        self.lanes: dict[str | None, deque[Job]] = {}  # lanes with work, each drained by one task
        self.tasks: set[asyncio.Task] = set()
        self.memory: OrderedDict[str, list[Item]] = OrderedDict()  # response id → its whole context
        self.active: dict[str, steering.Active] = {}
        self.waiting: dict[str, list[steering.Steer]] = {}  # response id → steering input waiting for tool output

    async def receive(self, data: bytes) -> None:
        """One client frame."""
        try:
            frame = _frame.decode(data)
        except msgspec.ValidationError as exc:
            await self.error(validation_error(exc), None)
            return
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            await self.error(ApiError(400, "A WebSocket message must be one JSON object with a 'type'.", code="invalid_json"), None)
            return
        if frame.type == "response.create":
            await self.create(data, frame)
        elif frame.type == "response.steer":
            await steering.receive(self, data)
        else:
            await self.error(invalid("type", f"Unknown WebSocket event type '{frame.type}': expected 'response.create' or 'response.steer'."), frame.stream_id)

    async def create(self, raw: bytes, frame: Frame) -> None:
        if frame.background:
            await self.error(
                invalid("background", "Background mode is not supported over a WebSocket: use POST /v1/responses.", "unsupported_parameter"), frame.stream_id
            )
            return
        await self.enqueue(Job(raw, frame.stream_id, frame.generate, []))

    async def enqueue(self, job: Job, first: bool = False) -> None:
        jobs = self.lanes.get(job.stream_id)
        if jobs is None:
            if len(self.lanes) >= self.config.max_streams:
                limit = f"This WebSocket connection has reached its stream limit ({self.config.max_streams} lanes with work at once)."
                await self.error(ApiError(400, limit, param="stream_id", code="websocket_stream_limit_reached"), job.stream_id)
                return
            jobs = self.lanes[job.stream_id] = deque()
            task = asyncio.create_task(self._drain(job.stream_id, jobs))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif len(jobs) >= self.config.max_queued and not first:
            limit = f"This WebSocket lane has {self.config.max_queued} requests waiting; wait for some to finish."
            await self.error(ApiError(400, limit, param="stream_id", code="websocket_stream_limit_reached"), job.stream_id)
            return
        if first:
            jobs.appendleft(job)
        else:
            jobs.append(job)

    async def _drain(self, stream_id: str | None, jobs: deque[Job]) -> None:
        try:
            while jobs:
                await self._turn(jobs.popleft())
        except ConnectionError:
            pass  # the client is gone: the reader sees it too and closes the session
        finally:
            del self.lanes[stream_id]

    async def _turn(self, job: Job) -> None:
        previous = None
        steers = job.steers
        arrived = time.monotonic()
        try:
            await self.limiter.admit(self.principal)
            if job.expanded:
                request, raw = decode_create_response(job.raw), job.raw
            else:
                request, raw = await self.prompts.decode(job.raw, self.principal.project)
            params = request.body
            params.stream = True  # implicit over a socket
            previous = params.previous_response_id
            if not steers and previous in self.waiting:  # steering input waited for this request
                steers = self.waiting.pop(previous)
                request.items = [item for steer in steers for item in steer.items] + request.items
            run = await self.engine.start(request, self.principal, Lane(self.send, job.stream_id), memory=self.memory, generate=job.generate)
        except ApiError as exc:
            self.forget(previous)
            self.metrics.turn("websocket", exc.status, arrived, None, self.principal, error_code=exc.code)
            await self.error(exc, job.stream_id)
            await steering.refuse(self, steers, "successor_creation_failed", f"The response could not be created: {exc.message}", job.stream_id)
            return
        response_id = run.response.id
        active = self.active[response_id] = steering.Active(run, job.stream_id)
        try:
            await run.finish()
        except ConnectionError:
            raise
        except Exception:
            log.exception("WebSocket turn %s failed inside the gateway", response_id)
        finally:
            await run.release()
            del self.active[response_id]
            self.metrics.turn("websocket", 200, arrived, run, self.principal)
        response = run.response
        if response.status in ("completed", "incomplete"):
            self._remember(response_id, [*run.context, *response.output])
        else:
            self.forget(previous)
        successor = await steering.settle(self, raw, active)
        if successor is not None:
            await self.enqueue(Job(successor, job.stream_id, True, active.steers, expanded=True), first=True)

    def _remember(self, response_id: str, context: list[Item]) -> None:
        self.memory[response_id] = context
        while len(self.memory) > self.config.remembered:
            forgotten, _ = self.memory.popitem(last=False)
            self.waiting.pop(forgotten, None)

    def forget(self, response_id: str | None) -> None:
        """The response is gone (deleted, or a continuation of it failed)."""
        if response_id is not None:
            self.memory.pop(response_id, None)
            self.waiting.pop(response_id, None)

    async def event(self, fields: dict[str, Any], stream_id: str | None) -> None:
        """An event of the connection's own (steering's), not a run's."""
        if stream_id is not None:
            fields["stream_id"] = stream_id
        await self.send(orjson.dumps(fields))

    async def error(self, exc: ApiError, stream_id: str | None) -> None:
        await self.event({"type": "error", "status": exc.status, **exc.envelope()}, stream_id)

    async def close(self) -> None:
        """The connection ended: stop every lane (a running response is kept as cancelled and
        its upstream call released)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Lane(Stream):
    """A run's sink on this connection: each event one text frame, carrying its lane's
    `stream_id` when it has one."""

    def __init__(self, send: Send, stream_id: str | None) -> None:
        super().__init__()
        self.send_frame = send
        # the tail that puts `stream_id` into an event's JSON object (the id's pattern needs no escaping)
        self.tail = b',"stream_id":"%s"}' % stream_id.encode() if stream_id is not None else b""

    async def send(self, events: list[tuple[str, bytes]], last: bool) -> None:
        for _, data in events:
            await self.send_frame(data[:-1] + self.tail if self.tail else data)
