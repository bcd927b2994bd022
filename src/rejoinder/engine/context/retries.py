"""Output that must match its schema: with `retries: N` (set by a prompt template, or sent
directly) and a `json_schema` text format, each attempt is read whole and checked against the
schema with `jsonschema`; one that does not match is generated again, up to N more times, and
only a matching one is shown (streamed as one batch), with the usage of every attempt. When none
matches, the response fails with the last mismatch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from rejoinder.protocol.errors import ApiError
from rejoinder.providers.base import Delta, Finish, ModelRequest, Provider, Usage, added, text_of, used

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

log = logging.getLogger("rejoinder.engine")


async def validated(provider: Provider, request: ModelRequest, schema: dict[str, Any], retries: int) -> AsyncIterator[list[Delta]]:
    """The first attempt whose text matches `schema`, as one batch."""
    from jsonschema import Draft202012Validator  # imported by the first request that asks for retries

    validator = Draft202012Validator(schema)
    problem = ""
    spent: Usage | None = None  # the attempts before: the response's usage counts them too
    for attempt in range(retries + 1):
        deltas = [delta async for batch in provider.stream(request) for delta in batch]
        problem = _mismatch(deltas, validator)
        if not problem:
            if spent is not None and isinstance(deltas[-1], Finish):
                deltas[-1] = Finish(deltas[-1].reason, added(spent, used(deltas)))
            yield deltas
            return
        spent = added(spent, used(deltas))
        log.info("output attempt %d did not match its schema: %s", attempt + 1, problem)
    raise ApiError(
        502,
        f"The model's output did not match the output schema after {retries + 1} attempts: {problem}",
        type="server_error",
        code="invalid_model_output",
    )


def _mismatch(deltas: list[Delta], validator: Validator) -> str:
    """What is wrong with the attempt's text, or "" when it matches."""
    try:
        value = orjson.loads(text_of(deltas))
    except orjson.JSONDecodeError:
        return "it is not JSON"
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(value))
    return "" if error is None else f"{error.message} (at {'/'.join(map(str, error.absolute_path)) or 'the top'})"
