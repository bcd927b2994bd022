"""Server-sent event frames: how every event leaves the gateway and how a background run's
event log keeps them, so a resumed stream repeats the original byte for byte."""

from __future__ import annotations


def frame(kind: str, data: bytes) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), data)


def frames(events: list[tuple[str, bytes]]) -> bytes:
    return b"".join(frame(kind, data) for kind, data in events)


def after(first: int, joined: bytes, last: int) -> bytes:
    """Of `joined` consecutive frames numbered from `first`, those numbered above `last`. Event
    JSON never holds a raw newline, so a blank line always ends a frame."""
    skip = last + 1 - first
    if skip <= 0:
        return joined
    parts = joined.split(b"\n\n")[skip:-1]
    return b"".join(part + b"\n\n" for part in parts)


def count(joined: bytes) -> int:
    return joined.count(b"\n\n")
