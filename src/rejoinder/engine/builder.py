"""Deltas → the official Responses event sequence and the Response snapshot, always in step.

Streaming and non-streaming share this one builder, so they cannot disagree. Events go to
`emit` the moment they happen (the sink must serialize at once: the snapshot keeps changing);
with no `emit`, no event is even built. The terminal event is held back until `terminal()`, so
the engine can store the response first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.ids import new_id
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta, Finish, Usage

Emit = Callable[[dict[str, Any]], None]

_PART = {"text": "output_text", "refusal": "refusal", "reasoning": "reasoning_text"}
_DELTA_EVENT = {
    "text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning": "response.reasoning_text.delta",
    "tool_call": "response.function_call_arguments.delta",
}
_DONE_EVENT = {
    "text": "response.output_text.done",
    "refusal": "response.refusal.done",
    "reasoning": "response.reasoning_text.done",
    "tool_call": "response.function_call_arguments.done",
}
_TEXT_FIELD = {"text": "text", "refusal": "refusal", "reasoning": "text", "tool_call": "arguments"}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class _Block:
    __slots__ = ("kind", "item", "output_index", "part", "content_index", "chunks", "logprobs")

    def __init__(self, kind: str, item: dict, output_index: int, part: dict | None, content_index: int) -> None:
        self.kind = kind
        self.item = item
        self.output_index = output_index
        self.part = part
        self.content_index = content_index
        self.chunks: list[str] = []
        self.logprobs: list[dict] = []


class Builder:
    def __init__(self, response: dict[str, Any], emit: Emit | None, with_logprobs: bool) -> None:
        self.response = response
        self.output: list[dict] = response["output"]
        self.emit = emit
        self.with_logprobs = with_logprobs
        self.sequence = 0
        self.blocks: dict[str, _Block] = {}
        self.message: dict | None = None  # the assistant message that text and refusal parts join

    def _event(self, type_: str, **fields: Any) -> None:
        fields["type"] = type_
        fields["sequence_number"] = self.sequence
        self.sequence += 1
        self.emit(fields)  # type: ignore[misc]

    def begin(self) -> None:
        if self.emit:
            self._event("response.created", response=self.response)
            self._event("response.in_progress", response=self.response)

    def apply(self, delta: Delta) -> None:
        if isinstance(delta, BlockDelta):
            self._delta(delta)
        elif isinstance(delta, BlockStart):
            self._start(delta)
        elif isinstance(delta, BlockEnd):
            self._end(self.blocks.pop(delta.block))
        else:
            self._finish(delta)

    def _add_item(self, item: dict) -> int:
        self.output.append(item)
        if self.emit:
            self._event("response.output_item.added", output_index=len(self.output) - 1, item=item)
        return len(self.output) - 1

    def _done_item(self, item: dict, output_index: int, status: str = "completed") -> None:
        item["status"] = status
        if self.emit:
            self._event("response.output_item.done", output_index=output_index, item=item)

    def _close_message(self, status: str = "completed") -> None:
        if self.message is not None:
            self._done_item(self.message, self.output.index(self.message), status)
            self.message = None

    def _start(self, start: BlockStart) -> None:
        if start.kind == "tool_call":
            self._close_message()
            item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress", "arguments": "", "call_id": start.call_id, "name": start.name}
            self.blocks[start.block] = _Block("tool_call", item, self._add_item(item), None, 0)
            return
        if start.kind == "reasoning":
            self._close_message()
            item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": []}
        elif self.message is None:
            item = self.message = {"id": new_id("msg"), "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        else:
            item = self.message
        output_index = self.output.index(item) if item["content"] else self._add_item(item)
        part: dict[str, Any] = {"type": _PART[start.kind], _TEXT_FIELD[start.kind]: ""}
        if start.kind == "text":
            part["annotations"] = []
            part["logprobs"] = []
        item["content"].append(part)
        block = _Block(start.kind, item, output_index, part, len(item["content"]) - 1)
        self.blocks[start.block] = block
        if self.emit:
            self._event("response.content_part.added", item_id=item["id"], output_index=output_index, content_index=block.content_index, part=part)

    def _delta(self, delta: BlockDelta) -> None:
        block = self.blocks[delta.block]
        block.chunks.append(delta.text)
        logprobs = delta.logprobs if self.with_logprobs and delta.logprobs else []
        if logprobs:
            block.logprobs.extend(logprobs)
        if not self.emit:
            return
        if block.kind == "tool_call":
            self._event(_DELTA_EVENT["tool_call"], item_id=block.item["id"], output_index=block.output_index, delta=delta.text)
        elif block.kind == "text":
            self._event(
                _DELTA_EVENT["text"], item_id=block.item["id"], output_index=block.output_index, content_index=block.content_index, delta=delta.text, logprobs=logprobs
            )
        else:
            self._event(_DELTA_EVENT[block.kind], item_id=block.item["id"], output_index=block.output_index, content_index=block.content_index, delta=delta.text)

    def _end(self, block: _Block, status: str = "completed") -> None:
        text = "".join(block.chunks)
        field = _TEXT_FIELD[block.kind]
        if block.kind == "tool_call":
            block.item["arguments"] = text
            if self.emit:
                self._event(_DONE_EVENT["tool_call"], item_id=block.item["id"], output_index=block.output_index, name=block.item["name"], arguments=text)
            self._done_item(block.item, block.output_index, status)
            return
        part = block.part
        part[field] = text
        extra: dict[str, Any] = {}
        if block.kind == "text":
            part["logprobs"] = extra["logprobs"] = block.logprobs
        if self.emit:
            ids = {"item_id": block.item["id"], "output_index": block.output_index, "content_index": block.content_index}
            self._event(_DONE_EVENT[block.kind], **ids, **{field: text}, **extra)
            self._event("response.content_part.done", **ids, part=part)
        if block.kind == "reasoning":
            self._done_item(block.item, block.output_index, status)

    def _finish(self, finish: Finish) -> None:
        incomplete = _INCOMPLETE.get(finish.reason)
        status = "incomplete" if incomplete else "completed"
        for block in list(self.blocks.values()):
            self._end(block, status)
        self.blocks.clear()
        self._close_message(status)
        response = self.response
        response["status"] = status
        if incomplete:
            response["incomplete_details"] = {"reason": incomplete}
        else:
            response["completed_at"] = int(time.time())
        response["usage"] = usage(finish.usage or Usage())

    def fail(self, error: ApiError) -> None:
        """End the response as failed: open items are marked incomplete, an `error` event is sent."""
        for block in list(self.blocks.values()):
            self._end(block, "incomplete")
        self.blocks.clear()
        self._close_message("incomplete")
        if self.emit:
            self._event("error", code=error.code, message=error.message, param=error.param)
        self.response["status"] = "failed"
        self.response["error"] = {"code": "rate_limit_exceeded" if error.status == 429 else "server_error", "message": error.message}

    def terminal(self) -> None:
        if self.emit:
            kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(self.response["status"], "response.failed")
            self._event(kind, response=self.response)


def usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
