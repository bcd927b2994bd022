"""Rendering a prompt template's text: Jinja2 in its immutable sandbox, with strict undefined
variables, and bounds on what a template may cost.

The sandbox refuses attribute walks (`__class__`, `__subclasses__`, `mro` …) and changes to
objects; on top of it a render may not repeat a string or list into more than `_MAX_OUTPUT`
characters or raise a number to a huge power. These checks are the first line; the second is
the cage (`engine.templating.cage`): a render runs in a separate process under CPU and memory
limits, killed past its deadline, because one C-level step (a big-integer power, a `replace`)
can take seconds and gigabytes without a Python check in between. Every refusal is an
`ApiError` (a 400) that names what was wrong and, for a syntax error, the line.
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rejoinder.protocol.errors import invalid

_MAX_OUTPUT = 1_000_000  # characters one render, or one repetition in it, may make
_MAX_POWER = 4096


_PLACED = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")  # a variable alone: it may be a content part
_WIDE = re.compile(r"\d{7,}")  # a width or precision in a format string that would make megabytes
_PADDING = frozenset(("center", "ljust", "rjust", "zfill", "expandtabs"))


def _size(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > _MAX_OUTPUT:
        raise SecurityError(f"a size above {_MAX_OUTPUT:,}")


def _format(value: Any) -> None:
    if isinstance(value, str) and _WIDE.search(value):
        raise SecurityError("a format width above a million")


class _Bounded(ImmutableSandboxedEnvironment):
    """The immutable sandbox, and no operation that makes a huge value in one step."""

    intercepted_binops = frozenset(("*", "**", "%"))

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > _MAX_POWER:
                raise SecurityError(f"an exponent above {_MAX_POWER}")
            return operator.pow(left, right)
        if operator_ == "%":
            _format(left)
            return operator.mod(left, right)
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) and len(sequence) * count > _MAX_OUTPUT:
                raise SecurityError(f"a repetition longer than {_MAX_OUTPUT:,} characters")
        return operator.mul(left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(__obj, "__name__", None) in _PADDING:
            for value in (*args, *kwargs.values()):
                _size(value)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # `"…".format` / `format_map`: the string is a format
            _format(value.__self__)
        return wrapped


def _checked(filter_: Any, check: Any) -> Any:
    """A filter whose arguments after the value pass `check` first (its Jinja markers kept)."""

    @functools.wraps(filter_)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            check(value)
        return filter_(*args, **kwargs)

    return checked


_ENVIRONMENT = _Bounded(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENVIRONMENT.globals.pop("lipsum", None)  # makes text of any length it is asked for
for _name in ("center", "indent", "wordwrap", "truncate"):
    _ENVIRONMENT.filters[_name] = _checked(_ENVIRONMENT.filters[_name], _size)
_ENVIRONMENT.filters["format"] = _checked(lambda value, *args, **kwargs: _format(value) or jinja2.filters.do_format(value, *args, **kwargs), lambda _: None)


def check(text: str, where: str) -> None:
    """That `text` compiles: a template is checked when it is saved, not first when it is used."""
    try:
        _ENVIRONMENT.parse(text)
    except TemplateSyntaxError as exc:
        raise invalid(where, f"Template error in '{where}', line {exc.lineno}: {exc.message}.", "invalid_template") from None


def render(text: str, variables: dict[str, str], where: str, placed_only: set[str]) -> str:
    """`text` rendered with `variables`. `placed_only` names variables that are content parts
    (images, files): they cannot be written into text."""
    try:
        template = _ENVIRONMENT.from_string(text)
    except TemplateSyntaxError as exc:
        raise invalid(where, f"Template error in '{where}', line {exc.lineno}: {exc.message}.", "invalid_template") from None
    try:
        rendered = template.render(variables)
    except UndefinedError as exc:
        name = str(exc.message or "").split("'")[1] if "'" in str(exc.message) else "?"
        if name in placed_only:
            raise invalid(
                f"prompt.variables.{name}", f"Variable '{name}' is a content part: place it alone in a content part ('{{{{ {name} }}}}'), not inside text."
            ) from None
        raise invalid(f"prompt.variables.{name}", f"Missing prompt variable '{name}' (used in '{where}').", "missing_required_parameter") from None
    except SecurityError as exc:
        raise invalid(where, f"The template in '{where}' tried something the sandbox forbids: {exc}.", "template_not_allowed") from None
    except (OverflowError, MemoryError, RecursionError) as exc:
        raise invalid(where, f"The template in '{where}' asked for too much ({type(exc).__name__}).", "template_not_allowed") from None
    except Exception as exc:  # a filter or test failing on a value: the template's own error
        raise invalid(where, f"Template error in '{where}': {type(exc).__name__}: {exc}.", "invalid_template") from None
    if len(rendered) > _MAX_OUTPUT:
        raise invalid(where, f"The template in '{where}' rendered more than {_MAX_OUTPUT:,} characters.", "template_not_allowed")
    return rendered


def render_template(template: dict[str, Any], texts: dict[str, str], parts: dict[str, dict[str, Any]]) -> tuple[str | None, list[Any]]:
    """A checked template's instructions and input messages, rendered with text variables
    `texts` and content-part variables `parts` (run inside the cage's workers)."""
    placed_only = set(parts) - set(texts)
    instructions = template.get("instructions")
    if isinstance(instructions, str):
        instructions = render(instructions, texts, "instructions", placed_only)
    input_ = template.get("input", [])
    messages = [{"role": "user", "content": input_}] if isinstance(input_, str) else input_
    rendered = []
    for i, item in enumerate(messages):
        content = item.get("content") if isinstance(item, dict) and item.get("type", "message") == "message" else None
        if isinstance(content, str):
            item = {**item, "content": _part_or_text(content, texts, parts, f"input[{i}].content", placed_only)}
        elif isinstance(content, list):
            item = {**item, "content": [_part(part, texts, parts, f"input[{i}].content[{j}]", placed_only) for j, part in enumerate(content)]}
        rendered.append(item)
    return instructions, rendered


def _placed(text: str, parts: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The part variable `text` places alone (`{{ photo }}`), if it is one."""
    placed = _PLACED.match(text)
    return parts.get(placed.group(1)) if placed else None


def _part(part: Any, texts: dict[str, str], parts: dict[str, dict[str, Any]], where: str, placed_only: set[str]) -> Any:
    if not isinstance(part, dict) or not isinstance(part.get("text"), str):
        return part
    placed = _placed(part["text"], parts)
    return placed if placed is not None else {**part, "text": render(part["text"], texts, f"{where}.text", placed_only)}


def _part_or_text(text: str, texts: dict[str, str], parts: dict[str, dict[str, Any]], where: str, placed_only: set[str]) -> Any:
    placed = _placed(text, parts)
    return [placed] if placed is not None else render(text, texts, where, placed_only)
