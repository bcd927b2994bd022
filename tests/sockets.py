"""WebSocket mode through the official SDK (`client.responses.connect()`), every frame checked:
against the specs (`check_socket_frame`), by the SDK's own parser, and for its numbering (each
response's events count up from 0 on its lane, steering's events going on after them)."""

from __future__ import annotations

import json
from typing import Any

from openai import AsyncOpenAI, OpenAI
from spec import check_socket_frame

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def ends_turn(frame: dict) -> bool:
    """A response's terminal event, or an error frame that answers a request."""
    return frame["type"] in TERMINAL or (frame["type"] == "error" and "status" in frame)


class Numbering:
    """Sequence numbers per lane: a response starts at 0 and counts up without a gap."""

    def __init__(self) -> None:
        self.next: dict[str | None, int] = {}

    def check(self, frame: dict) -> None:
        lane = frame.get("stream_id")
        if frame["type"] == "response.created":
            assert frame["sequence_number"] == 0, frame
        elif frame["type"] == "response.steer.failed" or (frame["type"] == "error" and "status" in frame):
            return  # about a request, not a place in a response's stream
        else:
            assert frame["sequence_number"] == self.next.get(lane), (frame, self.next)
        self.next[lane] = frame["sequence_number"] + 1


def _checked(connection: Any, raw: bytes | str, numbering: Numbering, validate: bool = True) -> dict:
    frame = json.loads(raw)
    if validate:
        check_socket_frame(frame)
    assert connection.parse_event(raw).type == frame["type"]
    numbering.check(frame)
    return frame


class Socket:
    """A sync SDK connection."""

    def __init__(self, client: OpenAI) -> None:
        self.manager = client.responses.connect()
        self.connection = self.manager.enter()
        self.numbering = Numbering()

    def recv(self) -> dict:
        return _checked(self.connection, self.connection.recv_bytes(), self.numbering)

    def until(self, stop, count: int = 1) -> list[dict]:
        """Frames up to and including the `count`-th one that `stop` accepts."""
        frames = []
        while count:
            frames.append(self.recv())
            count -= stop(frames[-1])
        return frames

    def turn(self, **params: Any) -> list[dict]:
        self.connection.response.create(**params)
        return self.until(ends_turn)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class AsyncSocket:
    """An asyncio SDK connection."""

    def __init__(self, connection: Any, validate: bool) -> None:
        self.connection = connection
        self.numbering = Numbering()
        self.validate = validate  # against the specs (some 10 ms of jsonschema for a frame with a Response)

    @classmethod
    async def open(cls, client: AsyncOpenAI, validate: bool = True) -> AsyncSocket:
        return cls(await client.responses.connect().enter(), validate)

    async def recv(self) -> dict:
        return _checked(self.connection, await self.connection.recv_bytes(), self.numbering, self.validate)

    async def until(self, stop, count: int = 1) -> list[dict]:
        frames = []
        while count:
            frames.append(await self.recv())
            count -= stop(frames[-1])
        return frames


def text_of(frames: list[dict]) -> str:
    return "".join(frame["delta"] for frame in frames if frame["type"] == "response.output_text.delta")


def final(frames: list[dict]) -> dict:
    """The Response in the (last) terminal event."""
    return [frame for frame in frames if frame["type"] in TERMINAL][-1]["response"]
