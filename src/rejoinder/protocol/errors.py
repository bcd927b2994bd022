"""One exception for everything a client may be told, rendered in OpenAI's error envelope."""

from __future__ import annotations

import orjson


class ApiError(Exception):
    """A failure the client sees as `{"error": {message, type, param, code}}` with `status`.

    `headers` carries what must travel with the status (e.g. `Retry-After` on a 429).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return orjson.dumps(self.envelope())


def invalid(param: str | None, message: str, code: str | None = "invalid_value") -> ApiError:
    """A 400 about one request parameter."""
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None) -> ApiError:
    return ApiError(404, message, param=param, code="not_found")


def response_not_found(response_id: str) -> ApiError:
    return not_found(f"Response with id '{response_id[:64]!s}' not found.")
