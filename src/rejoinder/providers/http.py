"""The upstream side of HTTP, shared by every provider.

One aiohttp session per process (keep-alive pools, explicit timeouts), one reader for
server-sent events, and one mapping from an upstream's failure to the status and envelope a
client should see. Secrets are scrubbed from anything an upstream says back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import msgspec
import orjson

from rejoinder.protocol.errors import ApiError

_session: aiohttp.ClientSession | None = None


def session() -> aiohttp.ClientSession:
    """The process's upstream client, created on first use inside the running loop."""
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
        _session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=600))
    return _session


async def close_session() -> None:
    global _session
    if _session is not None:
        await _session.close()
        _session = None


@asynccontextmanager
async def post(url: str, body: bytes, headers: dict[str, str], secret: str | None, read_timeout: float | None = None):
    """POST to an upstream and yield its successful response; any failure becomes `ApiError`."""
    # A deployment's own read timeout, else the session's (passing None would mean no timeout).
    options = {"timeout": aiohttp.ClientTimeout(total=None, connect=10, sock_read=read_timeout)} if read_timeout else {}
    try:
        async with session().post(url, data=body, headers=headers, **options) as response:
            if response.status >= 400:
                raise error_from_status(response.status, await response.read(), response.headers, secret)
            yield response
    except ApiError:
        raise
    except asyncio.TimeoutError:
        raise ApiError(504, "The upstream model provider timed out.", type="server_error", code="upstream_timeout") from None
    except aiohttp.ClientPayloadError:
        raise ApiError(502, "The upstream model provider closed the connection mid-response.", type="server_error", code="upstream_error") from None
    except aiohttp.ClientError as exc:
        raise ApiError(502, f"Could not reach the upstream model provider ({type(exc).__name__}).", type="server_error", code="upstream_unreachable") from None


async def _sse_batches(response: aiohttp.ClientResponse) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Yield, per network read, the complete server-sent events it finished, as `(event, data)`.

    Batching by read lets the engine answer everything that arrived together with one write.
    Comments and keep-alives are skipped; a trailing event without its blank line still counts.
    """
    pending = b""
    async for chunk in response.content.iter_any():
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = (pending + chunk).split(b"\n\n")
        pending = blocks.pop()
        events = [event for event in map(_parse_event, blocks) if event is not None]
        if events:
            yield events
    if pending.strip():
        event = _parse_event(pending)
        if event is not None:
            yield [event]


class StreamTranslator(Protocol):
    """A provider's reader of one upstream stream."""

    done: bool  # the upstream said its last word (`[DONE]`, `message_stop`, …)

    def finish(self) -> list[Any]:
        """The closing deltas, `Finish` last; raises `ApiError` if the stream ended early."""
        ...


class EndsWithAnEvent:
    """For upstreams whose last event carries the finish (`message_stop`,
    `response.completed`): the translator emits `Finish` itself and sets `done`."""

    done = False

    def finish(self) -> list[Any]:
        if not self.done:
            raise cut_short()
        return []


async def stream_deltas(response: aiohttp.ClientResponse, translate: Callable[[bytes], list[Any]], translator: StreamTranslator) -> AsyncIterator[list[Any]]:
    """Per network read, the deltas `translate` makes of each event's data; the stream's
    closing deltas travel with the read that ended it, so a fast upstream costs one write.

    When `translate` raises (the upstream reported an error), what arrived before the error
    is yielded first, so the client still sees it before `response.failed`.
    """
    async for events in _sse_batches(response):
        deltas: list[Any] = []
        try:
            for _, data in events:
                deltas += translate(data)
        except ApiError:
            if deltas:
                yield deltas
            raise
        if translator.done:
            yield deltas + translator.finish()
            return
        if deltas:
            yield deltas
    yield translator.finish()


def _parse_event(block: bytes) -> tuple[str, bytes] | None:
    name, data = "", []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return (name, b"\n".join(data)) if data else None


def unreadable() -> ApiError:
    return ApiError(502, "The upstream model provider sent a response this gateway could not read.", type="server_error", code="upstream_error")


def cut_short() -> ApiError:
    return ApiError(502, "The upstream model provider's stream ended before the response was complete.", type="server_error", code="upstream_error")


def read_json(data: bytes) -> Any:
    """One upstream JSON document, decoded without a schema; garbage is an upstream fault."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise unreadable() from None


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def upstream_message(body: Any) -> str:
    """The human sentence inside any of the error bodies providers send."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    return error[key]
        for key in ("message", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    if isinstance(body, list) and body:
        return upstream_message(body[0])
    return ""


def _retry_after(headers: Any, body: Any) -> dict[str, str]:
    """The upstream's retry hint: its `Retry-After` header, or Google's `RetryInfo` detail."""
    if "Retry-After" in headers:
        return {"Retry-After": headers["Retry-After"]}
    details = body.get("error", {}).get("details") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    for detail in details or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            return {"Retry-After": str(max(1, round(float(delay[:-1]))))}
    return {}


def error_from_status(status: int, raw: bytes, headers: Any, secret: str | None) -> ApiError:
    """Map an upstream HTTP failure to what the gateway's client should see."""
    try:
        body = orjson.loads(raw)
        detail = upstream_message(body)
    except orjson.JSONDecodeError:
        body, detail = None, raw[:300].decode("utf-8", "replace").strip()
    detail = scrub(detail, secret)
    said = f": {detail}" if detail else "."
    if status in (401, 403) or b"API_KEY_INVALID" in raw:  # Gemini reports a bad key as a 400
        return ApiError(
            502, f"The upstream model provider rejected the gateway's credentials (HTTP {status}).", type="server_error", code="upstream_auth_error"
        )
    if status == 429:
        retry = _retry_after(headers, body)
        return ApiError(429, f"The upstream model provider is rate limiting requests{said}", type="rate_limit_error", code="rate_limit_exceeded", headers=retry)
    if status in (503, 529):
        retry = _retry_after(headers, body)
        return ApiError(503, f"The upstream model provider is overloaded{said}", type="server_error", code="upstream_overloaded", headers=retry)
    if status in (408, 504):
        return ApiError(504, f"The upstream model provider timed out{said}", type="server_error", code="upstream_timeout")
    if status in (400, 413, 422):
        return ApiError(400, f"The upstream model provider rejected the request{said}", code="upstream_invalid_request")
    return ApiError(502, f"The upstream model provider failed (HTTP {status}){said}", type="server_error", code="upstream_error")


def stream_error(body: Any, secret: str | None) -> ApiError:
    """An error the upstream reported inside an already-started stream."""
    detail = scrub(upstream_message(body), secret) or "unknown error"
    return ApiError(502, f"The upstream model provider reported an error mid-stream: {detail}", type="server_error", code="upstream_error")
