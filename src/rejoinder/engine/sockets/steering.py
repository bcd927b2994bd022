"""Steering over a WebSocket: user input for a response while it runs.

`response.steer {previous_response_id, input}` names a response running on the connection.
Accepted input (`response.steer.accepted`) ends that response at its next upstream batch as
`incomplete`, reason `steered`, and a successor starts at the head of its lane: the original
request's settings, `previous_response_id` the steered response, and as input every queued
steer in the order sent. Its `response.created` is the commit point. A response that ends
before it can be stopped ends as it would have, and the successor follows it all the same.

A response that ends with calls of the client's own tools cannot go on without their output:
the input stays queued (`response.steer.pending`, with `required_input` stubs) and goes first
in the next `response.create` that continues that response. Input that cannot be applied comes
back whole in `response.steer.failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import msgspec
import orjson
from msgspec import Struct

from rejoinder.config import WebSocketConfig
from rejoinder.engine.lifecycle import Sequence
from rejoinder.engine.run import Run
from rejoinder.protocol.checks import validation_error
from rejoinder.protocol.errors import ApiError, invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.items import CustomToolCall, FunctionCall, Message
from rejoinder.protocol.request import decode_input


class SteerFrame(Struct):
    previous_response_id: str
    input: str | list[dict[str, Any]]


_decoder = msgspec.json.Decoder(SteerFrame)


class Steer(NamedTuple):
    id: str
    previous_response_id: str
    input: Any  # as sent: `response.steer.failed` gives it back
    items: list


class Active:
    """A response running on a connection, and the steering input sent to it."""

    __slots__ = ("run", "stream_id", "steers", "late")

    def __init__(self, run: Run, stream_id: str | None) -> None:
        self.run = run
        self.stream_id = stream_id
        self.steers: list[Steer] = []
        self.late: list[dict[str, Any]] = []  # acceptances the run could no longer place among its events


class Connection(Protocol):
    """What steering needs of its WebSocket connection (`engine.sockets.session.Session`)."""

    active: dict[str, Active]
    memory: Mapping[str, Any]
    waiting: dict[str, list[Steer]]
    config: WebSocketConfig

    async def event(self, fields: dict[str, Any], stream_id: str | None) -> None: ...

    async def error(self, exc: ApiError, stream_id: str | None) -> None: ...


async def receive(session: Connection, data: bytes) -> None:
    try:
        frame = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        await session.error(validation_error(exc), None)
        return
    target = frame.previous_response_id
    try:
        items = decode_input(frame.input, "input")
        _check(items)
    except ApiError as exc:
        await _failed(session, Steer("", target, frame.input, []), "invalid_input", exc.message, None)
        return
    active = session.active.get(target)
    if active is None:
        code = "response_already_completed" if target in session.memory else "response_not_found"
        message = f"Response '{target}' has already completed." if target in session.memory else f"Response '{target}' is not running on this connection."
        await _failed(session, Steer("", target, frame.input, []), code, message, None)
        return
    if active.run.conversation is not None or active.run.params.context_management:
        message = f"Response '{target}' is bound to a conversation or compacts its context: it cannot be steered."
        await _failed(session, Steer("", target, frame.input, []), "steering_not_supported", message, active.stream_id)
        return
    if len(active.steers) >= session.config.max_steers:
        message = f"Response '{target}' already has {session.config.max_steers} steering inputs waiting."
        await _failed(session, Steer("", target, frame.input, []), "too_many_pending_steers", message, active.stream_id)
        return
    steer = Steer(new_id("steer"), target, frame.input, items)
    active.steers.append(steer)
    accepted = {"steer": {"id": steer.id, "previous_response_id": target}}
    if not active.run.interject("response.steer.accepted", accepted):
        active.late.append(accepted)


def _check(items: list) -> None:
    if not items:
        raise invalid("input", "Steering input must not be empty.")
    for i, item in enumerate(items):
        if not isinstance(item, Message) or item.role != "user":
            raise invalid(f"input[{i}]", f"Invalid 'input[{i}]': steering takes only messages with the 'user' role.")


async def settle(session: Connection, raw: bytes, active: Active) -> bytes | None:
    """After a response's terminal event, what becomes of its steering input; the successor's
    request when one follows (`raw` is the ended response's)."""
    response, sequence, lane = active.run.response, active.run.events, active.stream_id
    for fields in active.late:
        await session.event({"type": "response.steer.accepted", **fields, "sequence_number": sequence.take()}, lane)
    steers = active.steers
    if not steers:
        return None
    response_id, status = response.id, response.status
    if status not in ("completed", "incomplete"):
        await refuse(session, steers, "response_not_active", f"Response '{response_id}' ended {status} before its steering input was applied.", lane, sequence)
        return None
    required = [_stub(item) for item in response.output if isinstance(item, (FunctionCall, CustomToolCall)) and item.status == "completed"]
    if required:
        session.waiting[response_id] = steers
        for steer in steers:
            pending = {"steer": {"id": steer.id, "previous_response_id": response_id}, "reason": "waiting_for_required_input", "required_input": required}
            await session.event({"type": "response.steer.pending", **pending, "sequence_number": sequence.take()}, lane)
        return None
    return _successor(raw, response_id, steers)


async def refuse(session: Connection, steers: list[Steer], code: str, message: str, stream_id: str | None, sequence: Sequence | None = None) -> None:
    """Give back steering input that cannot be applied, numbered after the response's events
    (`sequence`) when it was meant for one that ran."""
    sequence = sequence or Sequence()
    for steer in steers:
        await _failed(session, steer, code, message, stream_id, sequence)


async def _failed(session: Connection, steer: Steer, code: str, message: str, stream_id: str | None, sequence: Sequence | None = None) -> None:
    shown = {"input": steer.input, "previous_response_id": steer.previous_response_id}
    if steer.id:
        shown["id"] = steer.id
    error = {"code": code, "message": message, "type": "invalid_request_error"}
    number = sequence.take() if sequence is not None else 0
    await session.event({"type": "response.steer.failed", "steer": shown, "error": error, "sequence_number": number}, stream_id)


def _stub(item: FunctionCall | CustomToolCall) -> dict[str, Any]:
    """What the client must supply for one of its tool calls: identifying fields only."""
    if isinstance(item, FunctionCall):
        return {"type": "function_call_output", "call_id": item.call_id, "name": item.name}
    return {"type": "custom_tool_call_output", "call_id": item.call_id}


def _successor(raw: bytes, response_id: str, steers: list[Steer]) -> bytes:
    """The successor's request: the steered one's, continuing it with the queued input."""
    body = orjson.loads(raw)
    body.pop("messages", None)
    body["input"] = [entry for steer in steers for entry in ([{"role": "user", "content": steer.input}] if isinstance(steer.input, str) else steer.input)]
    body["previous_response_id"] = response_id
    return orjson.dumps(body)
