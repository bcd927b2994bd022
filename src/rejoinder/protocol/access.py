"""The organization API's bodies (`/v1/organization/projects…`): projects and their API keys,
shaped as OpenAI's organization objects, with the gateway's own limits beside them."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from rejoinder.protocol.checks import decode_body
from rejoinder.protocol.errors import invalid

Period = Literal["day", "month"]


class Limits(Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What a project or one of its keys may use: model names (a trailing `*` is a prefix;
    none: every model), requests and tokens per minute, and dollars per day or month (priced by
    the models' `price` in the config). A key is held to its own limits and to its project's."""

    allowed_models: list[str] | None = None  # model names it may use (a trailing `*` is a prefix); none: every model
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute (input and output)
    budget: float | None = None  # dollars per `budget_period`, at the models' `price`
    budget_period: Period = "month"  # what the budget counts: `day` or `month`


class Create(Limits, kw_only=True):
    """A new project, or a new key of one: its name and its limits."""

    name: str


class UpdateProject(Struct, forbid_unknown_fields=True):
    """Only what is given changes; a limit given as null is lifted."""

    name: str | UnsetType = UNSET
    allowed_models: list[str] | None | UnsetType = UNSET
    rpm: int | None | UnsetType = UNSET
    tpm: int | None | UnsetType = UNSET
    budget: float | None | UnsetType = UNSET
    budget_period: Period | UnsetType = UNSET


_decoders = {kind: msgspec.json.Decoder(kind) for kind in (Create, UpdateProject)}


def decode(kind: type, raw: bytes) -> Any:
    """A body of `kind`, its name and limits checked."""
    body = decode_body(_decoders[kind], raw)
    if isinstance(body.name, str) and not 0 < len(body.name) <= 256:
        raise invalid("name", "Invalid 'name': expected 1 to 256 characters.")
    check_limits(body)
    return body


def check_limits(body: Any) -> None:
    for name in ("rpm", "tpm"):
        value = getattr(body, name)
        if isinstance(value, int) and value < 1:
            raise invalid(name, f"Invalid '{name}': expected a whole number of at least 1, or null for no limit.")
    if isinstance(body.budget, (int, float)) and not 0 < body.budget < 1e9:
        raise invalid("budget", "Invalid 'budget': expected dollars above 0, or null for no budget.")
    models = body.allowed_models
    if isinstance(models, list) and any(not model or "*" in model[:-1] or len(model) > 128 for model in models):
        raise invalid("allowed_models", "Invalid 'allowed_models': names of 1 to 128 characters; '*' may only end one (a prefix).")


def limits_of(body: Any, old: Limits | None = None) -> Limits:
    """The limits a body sets; for an update, over `old` (what it leaves out stays)."""
    old = old or Limits()
    given = {name: getattr(body, name) for name in Limits.__struct_fields__}
    return Limits(**{name: getattr(old, name) if value is UNSET else value for name, value in given.items()})
