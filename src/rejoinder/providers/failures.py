"""What an upstream's failures become for the gateway's client: the status and envelope each
kind of failure maps to, with any secret scrubbed from what the upstream said."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import orjson

from rejoinder.protocol.errors import ApiError

log = logging.getLogger("rejoinder.providers")


def too_large(what: str, cap: int) -> ApiError:
    return ApiError(
        502, f"The upstream model provider sent a {what} larger than this gateway accepts ({cap} bytes).", type="server_error", code="upstream_error"
    )


def unreachable(exc: Exception) -> ApiError:
    return ApiError(502, f"Could not reach the upstream model provider ({type(exc).__name__}).", type="server_error", code="upstream_unreachable")


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


def error_from_status(status: int, raw: bytes, headers: Any, secret: str | None, url: str) -> ApiError:
    """Map an upstream HTTP failure to what the gateway's client should see."""
    try:
        body = orjson.loads(raw)
        detail = scrub(upstream_message(body), secret)
    except orjson.JSONDecodeError:  # scrubbed whole, then cut: a cut key would slip past
        body, detail = None, scrub(raw.decode("utf-8", "replace"), secret)[:300].strip()
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
    if status == 404:  # most often a base URL without its version segment, or a wrong model
        log.warning("upstream answered 404 for POST %s", url)
        return ApiError(502, f"The upstream model provider answered 404 Not Found for POST {url}{said}", type="server_error", code="upstream_error")
    return ApiError(502, f"The upstream model provider failed (HTTP {status}){said}", type="server_error", code="upstream_error")


def stream_error(body: Any, secret: str | None) -> ApiError:
    """An error the upstream reported inside an already-started stream."""
    detail = scrub(upstream_message(body), secret) or "unknown error"
    return ApiError(502, f"The upstream model provider reported an error mid-stream: {detail}", type="server_error", code="upstream_error")
