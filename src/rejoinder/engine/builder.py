"""Deltas → the official Responses event sequence and the Response snapshot, always in step.

Streaming and non-streaming share this one builder, so they cannot disagree. Events go to
`emit` the moment they happen (the sink must serialize at once: the snapshot keeps changing);
with no `emit`, no event is even built. The terminal event is held back until `terminal()`, so
the engine can store the response first.

Parts gather into items: text and refusal parts into one assistant message, reasoning text and
summary parts into one reasoning item; a part of the other family, a tool call, a
`ReasoningEnd` or the finish closes the open item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from rejoinder.engine import lifecycle
from rejoinder.engine.lifecycle import Sequence
from rejoinder.engine.skeleton import usage
from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import is_valid_id, new_id
from rejoinder.protocol.items import Compaction, CustomToolCall, FunctionCall, Message, OutputText, Reasoning, ReasoningText, Refusal, SummaryText, decode_item
from rejoinder.protocol.response import Response, encode, shown, without_encrypted
from rejoinder.protocol.tools import Tools
from rejoinder.providers.base import (
    Annotation,
    BlockDelta,
    BlockEnd,
    BlockStart,
    Delta,
    Finish,
    HostedEvent,
    HostedOutput,
    HostedStart,
    ReasoningEnd,
    Usage,
    added,
)

Emit = Callable[[dict[str, Any]], None]


class _Kind:
    """How one kind of block appears: its item family, its part, and its event names."""

    def __init__(self, family: str, field: str, part: Any, text_field: str, delta: str, done: str, index: str = "content_index") -> None:
        self.family = family  # "message" or "reasoning": the item the part joins
        self.field = field  # the item's list the part goes in
        self.part = part  # the part's struct
        self.text_field = text_field
        self.delta = delta
        self.done = done
        self.index = index  # the event field that numbers the part
        summary = index == "summary_index"
        self.part_added = "response.reasoning_summary_part.added" if summary else "response.content_part.added"
        self.part_done = "response.reasoning_summary_part.done" if summary else "response.content_part.done"


_KINDS = {
    "text": _Kind("message", "content", OutputText, "text", "response.output_text.delta", "response.output_text.done"),
    "refusal": _Kind("message", "content", Refusal, "refusal", "response.refusal.delta", "response.refusal.done"),
    "reasoning": _Kind("reasoning", "content", ReasoningText, "text", "response.reasoning_text.delta", "response.reasoning_text.done"),
    "summary": _Kind(
        "reasoning", "summary", SummaryText, "text", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done", "summary_index"
    ),
}


class _Block:
    __slots__ = ("kind", "item", "output_index", "part", "index", "chunks", "logprobs")

    def __init__(self, kind: str, item: Any, output_index: int, part: Any, index: int) -> None:
        self.kind = kind
        self.item = item
        self.output_index = output_index
        self.part = part
        self.index = index
        self.chunks: list[str] = []
        self.logprobs: list[dict] = []


class Builder:
    def __init__(
        self,
        response: Response,
        emit: Emit | None,
        with_logprobs: bool,
        with_encrypted: bool,
        tools: Tools,
        sequence: Sequence,
    ) -> None:
        self.response = response
        self.tools = tools  # custom tools' calls come back as custom_tool_call, namespaced ones with their namespace
        self.output: list[Any] = response.output
        self.emit = emit
        self.with_logprobs = with_logprobs
        self.with_encrypted = with_encrypted
        self.sequence = sequence  # the response's (a background run goes on after the events logged when it was queued)
        self.blocks: dict[str, _Block] = {}
        self.open: tuple[str, Any, int] | None = None  # (family, item, output_index) taking parts
        self.hosted: dict[str, int] = {}  # hosted tool item id → its output index
        self.spent: Usage | None = None  # upstream calls before the last (see `spend`)
        self.used: Usage | None = None  # every upstream call's, once the response ended (for usage records and budgets)

    def _event(self, type_: str, **fields: Any) -> None:
        fields["type"] = type_
        fields["sequence_number"] = self.sequence.take()
        self.emit(fields)  # type: ignore[misc]

    def _shown(self, item: Any) -> Any:
        """An item as events show it: opaque reasoning state only when the client asked."""
        return item if self.with_encrypted else without_encrypted(item)

    def _shown_response(self) -> Response:
        return self.response if self.with_encrypted else shown(self.response)

    def queued(self) -> None:
        """A background run's first events, logged when it is queued."""
        self._event("response.created", response=self.response)
        self._event("response.queued", response=self.response)

    def begin(self, queued: bool = False) -> None:
        """The response starts (after `queued()` for a background run)."""
        if self.emit:
            if not queued:
                self._event("response.created", response=self.response)
            self._event("response.in_progress", response=self.response)

    def apply(self, delta: Delta) -> None:
        if isinstance(delta, BlockDelta):
            self._delta(delta)
        elif isinstance(delta, BlockStart):
            self._start(delta)
        elif isinstance(delta, BlockEnd):
            self._end(self.blocks.pop(delta.block))
        elif isinstance(delta, Annotation):
            self._annotate(self.blocks[delta.block], delta.annotation)
        elif isinstance(delta, (HostedStart, HostedEvent, HostedOutput)):
            self._hosted(delta)
        elif isinstance(delta, ReasoningEnd):
            self._reasoning_end(delta)
        else:
            self._finish(delta)

    def _add_item(self, item: Any) -> int:
        self.output.append(item)
        if self.emit:
            self._event("response.output_item.added", output_index=len(self.output) - 1, item=self._shown(item))
        return len(self.output) - 1

    def _done_item(self, item: Any, output_index: int, status: str = "completed") -> None:
        if not isinstance(item, Compaction):  # the one item without a status
            item.status = status
        if self.emit:
            self._event("response.output_item.done", output_index=output_index, item=self._shown(item))

    def _close(self, status: str = "completed") -> None:
        if self.open is not None:
            _, item, output_index = self.open
            self.open = None
            self._done_item(item, output_index, status)

    def _container(self, family: str) -> tuple[Any, int]:
        """The open item of `family`, opening a new one (and closing any other) as needed."""
        if self.open is not None and self.open[0] == family:
            return self.open[1], self.open[2]
        self._close()
        item: Any
        if family == "message":
            item = Message("assistant", [], id=new_id("msg"), status="in_progress")
        else:
            item = Reasoning([], id=new_id("rs"))
        self.open = (family, item, self._add_item(item))
        return item, self.open[2]

    def _start(self, start: BlockStart) -> None:
        if start.kind == "tool_call":
            self._close()
            item: Any
            if start.name in self.tools.custom:
                item = CustomToolCall(start.call_id, start.name, "", id=new_id("ctc"), status="in_progress")
                kind = "custom_call"
            else:
                item = FunctionCall(start.call_id, start.name, "", id=new_id("fc"), status="in_progress")
                kind = "tool_call"
            if start.name in self.tools.namespaced:
                item.namespace, item.name = self.tools.namespaced[start.name]
            self.blocks[start.block] = _Block(kind, item, self._add_item(item), None, 0)
            return
        kind = _KINDS[start.kind]
        item, output_index = self._container(kind.family)
        part = kind.part("")
        parts = getattr(item, kind.field)
        if not parts:  # a reasoning item's `content` starts unset
            parts = []
            setattr(item, kind.field, parts)
        parts.append(part)
        block = _Block(start.kind, item, output_index, part, len(parts) - 1)
        self.blocks[start.block] = block
        if self.emit:
            self._event(kind.part_added, item_id=item.id, output_index=output_index, **{kind.index: block.index}, part=part)

    def _delta(self, delta: BlockDelta) -> None:
        block = self.blocks[delta.block]
        block.chunks.append(delta.text)
        logprobs = delta.logprobs if self.with_logprobs and delta.logprobs else []
        if logprobs:
            block.logprobs.extend(logprobs)
        if not self.emit or block.kind == "custom_call":  # its input is known only whole: see _end
            return
        ids = {"item_id": block.item.id, "output_index": block.output_index}
        if block.kind == "tool_call":
            self._event("response.function_call_arguments.delta", **ids, delta=delta.text)
            return
        kind = _KINDS[block.kind]
        if block.kind == "text":
            ids["logprobs"] = logprobs
        self._event(kind.delta, **ids, **{kind.index: block.index}, delta=delta.text)

    def _end(self, block: _Block, status: str = "completed") -> None:
        text = "".join(block.chunks)
        if block.kind == "custom_call":
            block.item.input = text = _custom_input(text)
            if self.emit:
                ids = {"item_id": block.item.id, "output_index": block.output_index}
                self._event("response.custom_tool_call_input.delta", **ids, delta=text)
                self._event("response.custom_tool_call_input.done", **ids, input=text)
            self._done_item(block.item, block.output_index, status)
            return
        if block.kind == "tool_call":
            block.item.arguments = text
            if self.emit:
                self._event(
                    "response.function_call_arguments.done", item_id=block.item.id, output_index=block.output_index, name=block.item.name, arguments=text
                )
            self._done_item(block.item, block.output_index, status)
            return
        kind = _KINDS[block.kind]
        part = block.part
        setattr(part, kind.text_field, text)
        extra: dict[str, Any] = {}
        if block.kind == "text":
            part.logprobs = extra["logprobs"] = block.logprobs
        if self.emit:
            ids = {"item_id": block.item.id, "output_index": block.output_index, kind.index: block.index}
            self._event(kind.done, **ids, **{kind.text_field: text}, **extra)
            self._event(kind.part_done, **ids, part=part)

    def _annotate(self, block: _Block, annotation: dict[str, Any]) -> None:
        annotations = block.part.annotations
        annotations.append(annotation)
        if self.emit:
            ids = {"item_id": block.item.id, "output_index": block.output_index, "content_index": block.index}
            self._event("response.output_text.annotation.added", **ids, annotation_index=len(annotations) - 1, annotation=annotation)

    def _hosted(self, delta: HostedStart | HostedEvent | HostedOutput) -> None:
        """Items of tools the upstream ran: added, relayed and finished as the upstream says."""
        if isinstance(delta, HostedEvent):
            output_index = self.hosted.get(delta.item_id)
            if output_index is not None and self.emit:
                self._event(delta.type, **delta.fields, item_id=delta.item_id, output_index=output_index)
            return
        item = delta.item
        if isinstance(item, dict):  # an upstream's (the gateway's own compaction comes typed)
            if not is_valid_id(item.get("id")):
                raise ApiError(502, "The upstream model provider sent a tool item without a usable id.", type="server_error", code="upstream_error")
            item = _typed(item)
        output_index = self.hosted.get(item.id)
        if output_index is None:
            self._close()
            output_index = self.hosted[item.id] = self._add_item(item)
        if isinstance(delta, HostedOutput):
            self.output[output_index] = item
            self._done_item(item, output_index, getattr(item, "status", None) or "completed")

    def _reasoning_end(self, end: ReasoningEnd) -> None:
        item, _ = self._container("reasoning")
        if end.encrypted is not None:
            item.encrypted_content = end.encrypted
        self._close()

    def progress(self) -> None:
        """Bring the open parts' text and calls' arguments up to date in the snapshot (they are
        joined only when they end), for a reader of a background run in progress."""
        for block in self.blocks.values():
            if block.kind == "tool_call":
                block.item.arguments = "".join(block.chunks)
            elif block.kind != "custom_call":
                setattr(block.part, _KINDS[block.kind].text_field, "".join(block.chunks))

    def _end_all(self, status: str) -> None:
        for block in list(self.blocks.values()):
            self._end(block, status)
        self.blocks.clear()
        self._close(status)
        for output_index in self.hosted.values():  # hosted items the upstream never finished
            item = self.output[output_index]
            if getattr(item, "status", None) == "in_progress":
                self._done_item(item, output_index, lifecycle.cut_short(item.type))

    def spend(self, used: Usage | None) -> None:
        """Upstream calls made for the response before its last one (a tool round, a
        compaction): their usage is added to the last one's when it ends."""
        self.spent = added(self.spent, used)

    def _finish(self, finish: Finish) -> None:
        self.used = added(self.spent, finish.usage or Usage())
        counts = usage(self.used)  # type: ignore[arg-type]
        status, reason = lifecycle.finished(finish.reason)
        self._end_all(status)
        lifecycle.end(self.response, status, reason=reason)
        self.response.usage = counts

    def announce(self, type_: str, fields: dict[str, Any]) -> None:
        """An event that is not the model's (steering's), numbered in the stream's order."""
        if self.emit:
            self._event(type_, **fields)

    def steered(self, partial: Usage) -> None:
        """Steering stopped the run between two upstream batches: what there is ends incomplete.
        The upstream reports usage only at its end, so the cut call's is `partial`, estimated."""
        self._finish(Finish("steered", partial))

    def fail(self, error: ApiError) -> None:
        """End the response as failed: open items are marked incomplete, an `error` event is sent."""
        self._end_all("incomplete")
        if self.emit:
            self._event("error", **lifecycle.error_event(error))
        lifecycle.end(self.response, "failed", error=error)
        self.used = self.spent  # the calls made before it failed are still billed

    def cancel(self) -> None:
        """End the response as cancelled (its client is gone: no more events)."""
        self.emit = None
        self._end_all("incomplete")
        lifecycle.end(self.response, "cancelled")
        self.used = self.spent

    def terminal(self) -> None:
        """The event that closes the stream (none for a cancelled response)."""
        kind = lifecycle.closing(self.response.status)
        if self.emit and kind:
            self._event(kind, response=self._shown_response())


def _custom_input(arguments: str) -> str:
    """The `input` string out of the arguments a custom tool's function form was called with."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments  # cut short: what there is
    return value.get("input", "") if isinstance(value, dict) else arguments


def _typed(item: dict[str, Any]) -> Any:
    """A hosted item as the output holds it: a struct where the type has one (a compaction),
    else a `HostedItem` around the JSON object it is."""
    return decode_item(encode(item))
