"""A response's life, decided in one place: its statuses and the moves between them, how it
ends (its fields, its unfinished items, the events that close its stream) and the numbering of
its events.

    queued ──► in_progress ──► completed | incomplete | failed | cancelled
      ▲  │          │           (incomplete: max_output_tokens, content_filter or steered)
      │  └─► cancelled (before it ran)
      └──────────── re-queued: its instance died before it emitted anything of its own

Everything that ends a response goes through `end`: the builder (a model turn's end, a failure,
a client gone), the background runner (a run that cannot start), and the store, which ends
responses on its own when their instance is gone or a queued run is cancelled. The store gets
that decision as `store_endings()` at construction: it persists what is decided here and never
builds an event itself, so a response reads the same however it ended.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.response import IncompleteDetails, Response, ResponseError, decode_response, encode, shown
from rejoinder.protocol.sse import frames
from rejoinder.store.runs import Endings, Outbox

QUEUED_EVENTS = 2
"""`response.created` and `response.queued`: a background run's first events, logged when it is
queued; its own events are numbered from here."""

_CLOSING = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}
"""The event that closes a stream, by status; a cancelled response's stream just ends (the spec
has no event for it)."""

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter", "steered": "steered"}
"""A provider-neutral finish reason that ends a response incomplete, and the reason it shows."""

_UNFINISHED = frozenset({"in_progress", "searching", "calling", "interpreting", "generating"})
_NEVER_INCOMPLETE = frozenset({"web_search_call", "image_generation_call"})
"""Item types whose schemas know only `completed` and `failed` as an end."""

_WHY = {
    "interrupted": "The gateway instance that was generating this response stopped before it finished.",
    "shut_down": "The gateway instance running this response shut down before it finished.",
}
"""Why the store ended a response as failed, by the reason it gives."""


class Sequence:
    """The numbers of one response's events, whoever emits them (the builder, steering, a
    background run's log): one counter per response."""

    __slots__ = ("next",)

    def __init__(self, start: int = 0) -> None:
        self.next = start

    def take(self) -> int:
        number = self.next
        self.next += 1
        return number


def cut_short(item_type: str) -> str:
    """The status of an item its response ended before it did."""
    return "failed" if item_type in _NEVER_INCOMPLETE else "incomplete"


def finished(reason: str) -> tuple[str, str | None]:
    """The status a model turn's finish reason ends a response with, and why it is incomplete."""
    incomplete = _INCOMPLETE.get(reason)
    return ("incomplete", incomplete) if incomplete else ("completed", None)


def end(response: Response, status: str, *, error: ApiError | None = None, reason: str | None = None) -> None:
    """End `response` with `status`: its items still open are cut short (the builder ends its
    own open items first, with their events), and the fields of that ending are set (`error`
    for failed, `incomplete_details` for incomplete, `completed_at` for completed)."""
    for item in response.output:
        if getattr(item, "status", None) in _UNFINISHED:
            item.status = cut_short(item.type)
    response.status = status
    if status == "failed":
        assert error is not None
        response.error = ResponseError("rate_limit_exceeded" if error.status == 429 else "server_error", error.message)
    elif status == "incomplete":
        response.incomplete_details = IncompleteDetails(reason)
    elif status == "completed":
        response.completed_at = int(time.time())


def error_event(error: ApiError) -> dict[str, Any]:
    """The fields of a stream's `error` event: OpenAI's carries them at the top, Open Responses'
    in `error`; both."""
    return {"code": error.code, "message": error.message, "param": error.param, "error": error.envelope()["error"]}


def closing(status: str) -> str | None:
    """The type of the event that closes a stream ending with `status` (none for cancelled)."""
    return _CLOSING.get(status)


def store_endings(outbox: Outbox) -> Endings:
    """What the store needs to end a response on its own, the same way the engine would."""
    return Endings(_ended_by_store, outbox)


def _ended_by_store(body: bytes, status: str, why: str, request: bytes | None, after: int | None) -> tuple[bytes, bytes]:
    """End a stored response (`body`) whose instance is gone (failed, for the reason `why`
    names) or a queued run that was cancelled: its new body, and with `after` (its log's last
    event) the events that close its logged stream, numbered on from there. `request` says
    whether the client wanted reasoning state."""
    response = decode_response(body)
    error = ApiError(500, _WHY[why], type="server_error", code="server_error") if status == "failed" else None
    end(response, status, error=error)
    kind = closing(status)
    if after is None or kind is None:
        return encode(response), b""
    wanted = request is not None and "reasoning.encrypted_content" in (orjson.loads(request).get("include") or ())
    sequence = Sequence(after + 1)
    events = []
    if error is not None:
        events.append({"type": "error", **error_event(error), "sequence_number": sequence.take()})
    events.append({"type": kind, "response": response if wanted else shown(response), "sequence_number": sequence.take()})
    return encode(response), frames([(event["type"], encode(event)) for event in events])
