"""Small pieces every translator needs: the tools a turn offers, data URLs, call arguments, what
a turn asks of a prompt cache."""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from typing import Any

from rejoinder.protocol.errors import invalid
from rejoinder.protocol.tools import AllowedTools, FunctionTool
from rejoinder.providers.base import BlockDelta, BlockEnd, BlockStart, Delta


def offered_tools(params: Any) -> tuple[list[FunctionTool], Any]:
    """The tools this turn may call and the choice among them: `allowed_tools` narrows the
    list and becomes its mode (`auto` or `required`), as every upstream understands."""
    tools, choice = params.function_tools, params.choice
    if isinstance(choice, AllowedTools):
        allowed = {tool.name for tool in choice.tools}
        return [tool for tool in tools if tool.name in allowed], choice.mode
    return tools, choice


def marked_for_cache(part: Any) -> bool:
    """Whether an input part ends a prefix the client marked for the prompt cache (OpenAI's
    `prompt_cache_breakpoint`; an absent one, null included, is UNSET, which is false)."""
    return bool(getattr(part, "prompt_cache_breakpoint", None))


def long_cache(settings: Any) -> bool:
    """Whether the turn asks its prompt cache to outlive the default few minutes
    (`prompt_cache_retention: 24h`, or a `prompt_cache_options.ttl`)."""
    options = settings.prompt_cache_options
    return settings.prompt_cache_retention == "24h" or (options is not None and options.ttl is not None)


def minimum_tokens(table: tuple[tuple[str, int], ...], model: str, default: int) -> int:
    """The shortest prefix a model family's cache holds: the entry of `table` whose name
    prefix is the longest one `model` starts with."""
    found = [(len(prefix), size) for prefix, size in table if model.startswith(prefix)]
    return max(found)[1] if found else default


SAMPLING = ("stop", "presence_penalty", "frequency_penalty", "logit_bias", "seed")


def sampling(params: Any, provider: str, supported: tuple[str, ...], verbosity: bool = False) -> dict[str, Any]:
    """The sampling knobs this turn sets, by their request names (`stop` always a list), once
    any this provider cannot honour has been refused with a 400 naming it: none is ever
    dropped silently. `text.verbosity` other than the default is refused unless `verbosity`."""
    chosen: dict[str, Any] = {}
    for name in SAMPLING:
        value = getattr(params, name)
        if value is None:
            continue
        if name not in supported:
            raise invalid(name, f"'{name}' is not supported by this model's provider ({provider}).", "unsupported_parameter")
        chosen[name] = [value] if name == "stop" and isinstance(value, str) else value
    if not verbosity and params.text is not None and params.text.verbosity not in (None, "medium"):
        raise invalid("text.verbosity", f"'text.verbosity' is not supported by this model's provider ({provider}).", "unsupported_parameter")
    return chosen


def data_url(url: str) -> tuple[str, str] | None:
    """`(media type, base64 data)` of a `data:` URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, _, data = url[5:].partition(",")
    if not head.endswith(";base64"):
        raise invalid("input", "Data URLs must be base64-encoded (data:<type>;base64,<data>).")
    return head[: -len(";base64")] or "application/octet-stream", data


_TEXT_TYPES = frozenset(("application/json", "application/xml", "application/x-yaml", "application/yaml", "application/javascript", "application/x-sh"))


def is_text(media_type: str) -> bool:
    """Whether a file of this type is text a model can read as it is (plain text, Markdown,
    HTML, source code, JSON …)."""
    return media_type.startswith("text/") or media_type in _TEXT_TYPES


def decoded_text(data: str) -> str:
    """A text file's base64 data as text (UTF-8; a byte that is not becomes U+FFFD)."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace")
    except binascii.Error:
        raise invalid("input", "A file's data is not valid base64.") from None


def guess_type(url: str, default: str) -> str:
    return mimetypes.guess_type(url.split("?", 1)[0])[0] or default


def arguments(text: str) -> Any:
    """A function call's arguments as an object, for upstreams that take JSON, not strings."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise invalid("input", "A function_call item's arguments are not valid JSON.") from None


class TextRun:
    """The one open text-like block of a stream (text, refusal, reasoning or summary): text of
    another kind ends it and starts the next. Also hands out the stream's block ids."""

    def __init__(self) -> None:
        self.open: tuple[str, str] | None = None  # (kind, block id)
        self.count = 0

    def new_block(self) -> str:
        self.count += 1
        return f"b{self.count}"

    def add(self, kind: str, text: str, logprobs: list | None = None) -> list[Delta]:
        out = [] if self.open is not None and self.open[0] == kind else self.close()
        if self.open is None:
            self.open = (kind, self.new_block())
            out.append(BlockStart(self.open[1], kind))  # type: ignore[arg-type]
        return out + [BlockDelta(self.open[1], text, logprobs)]

    def close(self) -> list[Delta]:
        if self.open is None:
            return []
        block, self.open = self.open[1], None
        return [BlockEnd(block)]
