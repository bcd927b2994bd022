"""The configuration reference, made from the config's own types at each docs build (an MkDocs
hook): every section and field the YAML file takes, with its type, its default and the comment
written beside the field in the source. The comment is the documentation, so it cannot drift
from the field; a field without one is listed by `undocumented()`, which a test keeps empty."""

from __future__ import annotations

import functools
import inspect
import io
import re
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from rejoinder import config

MARKER = "<!-- configuration reference -->"
_FIELD = re.compile(r"^\s+(\w+)\s*:")


@dataclass
class Section:
    key: str  # where it sits in the file: `models[]`, `models[].price`
    kind: type[Struct]


@dataclass
class Field:
    name: str
    kind: str
    default: str
    doc: str


@functools.cache
def sections() -> tuple[Section, ...]:
    """Every struct the file holds, top first, each once, under the key that reaches it (the
    types do not change while a build runs, so this is walked once)."""
    found: list[Section] = []
    seen: set[type] = set()

    def visit(key: str, kind: type[Struct]) -> None:
        if kind in seen:
            return
        seen.add(kind)
        found.append(Section(key, kind))
        for field in msgspec.structs.fields(kind):
            for inner, many in _structs_in(field.type):
                visit(f"{key + '.' if key else ''}{field.name}{'[]' if many else ''}", inner)

    visit("", config.Config)
    return tuple(found)


def fields(kind: type[Struct]) -> list[Field]:
    docs = _comments(kind)
    return [Field(f.name, _type(f.type), _default(f), docs.get(f.name, "")) for f in msgspec.structs.fields(kind)]


def undocumented() -> list[str]:
    """`section.field` of each field with no comment beside it in the source."""
    return [f"{s.key or '(top)'}.{f.name}" for s in sections() for f in fields(s.kind) if not f.doc]


def render() -> str:
    out = []
    for section in sections():
        title = section.key or "Top level"
        out.append(f"## `{title}`\n" if section.key else f"## {title}\n")
        doc = inspect.getdoc(section.kind)
        if doc and section.kind.__doc__ is not None and section.kind.__doc__ is vars(section.kind).get("__doc__"):
            out.append(_oneline(doc) + "\n")
        out.append("| key | type | default | what it is |\n| --- | --- | --- | --- |")
        for f in fields(section.kind):
            out.append(f"| `{f.name}` | {f.kind} | {f.default} | {_cell(f.doc)} |")
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs hook: the reference goes where the configuration page has its marker."""
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown


def _comments(kind: type) -> dict[str, str]:
    """Field → the comment beside it (on its line) or the comment lines just above it, for the
    fields each class of `kind`'s bases declares in its own body."""
    docs: dict[str, str] = {}
    for cls in reversed(kind.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, Struct)) or cls is Struct:
            continue
        lines, _ = inspect.getsourcelines(cls)
        above: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("# ").rstrip())
                continue
            field = _FIELD.match(line)
            if field and not stripped.startswith(("def ", "@")):
                beside = _trailing(line)
                docs[field.group(1)] = beside or " ".join(above)
            above = []
    return docs


def _trailing(line: str) -> str:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    return next((t.string.lstrip("# ").rstrip() for t in tokens if t.type == tokenize.COMMENT), "")


def _structs_in(kind: Any) -> list[tuple[type[Struct], bool]]:
    """The structs a field's type holds, and whether as a list's items."""
    kind = config.bare_type(kind)
    if isinstance(kind, type) and issubclass(kind, Struct):
        return [(kind, False)]
    origin = typing.get_origin(kind)
    if origin is list:
        return [(inner, True) for inner, _ in _structs_in(typing.get_args(kind)[0])]
    if origin in (types.UnionType, typing.Union):
        return [found for member in typing.get_args(kind) for found in _structs_in(member)]
    return []


def _type(kind: Any) -> str:
    constraints = []
    while typing.get_origin(kind) is Annotated:
        kind, *metas = typing.get_args(kind)
        for meta in metas:
            if isinstance(meta, Meta):
                constraints += [
                    f"{sign} {getattr(meta, name)}" for name, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")) if getattr(meta, name) is not None
                ]
                if meta.min_length is not None:
                    constraints.append(f"at least {meta.min_length} long")
                if meta.pattern is not None:
                    constraints.append("one line" if meta.pattern.startswith("^[^\r\n]") else f"matching `{meta.pattern}`")
    origin = typing.get_origin(kind)
    if origin is Literal:
        text = " \\| ".join(f"`{value}`" for value in typing.get_args(kind))
    elif origin in (types.UnionType, typing.Union):
        members = [m for m in typing.get_args(kind) if m is not type(None)]
        text = " \\| ".join(_type(m) for m in members) + (" or null" if len(members) < len(typing.get_args(kind)) else "")
    elif origin is list:
        text = f"list of {_type(typing.get_args(kind)[0])}"
    elif origin is dict:
        text = f"map of {_type(typing.get_args(kind)[1])}"
    elif isinstance(kind, type) and issubclass(kind, Struct):
        text = f"[{kind.__name__}](#{_anchor(kind)})"
    else:
        text = getattr(kind, "__name__", str(kind))
    return text + (f" ({', '.join(constraints)})" if constraints else "")


def _anchor(kind: type) -> str:
    """The heading's id, as MkDocs's table of contents makes it from `` `models[].price` ``."""
    section = next(s for s in sections() if s.kind is kind)
    return re.sub(r"[^a-z0-9_]+", "", section.key.lower()) if section.key else "top-level"


def _default(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    value = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    if isinstance(value, str) and str(Path.home()) in value:
        value = value.replace(str(Path.home()), "~")
    if value is None:
        return "none"
    if isinstance(value, Struct):
        return "its defaults"
    return f"`{msgspec.json.encode(value).decode()}`" if not isinstance(value, str) else f"`{value}`"


def _oneline(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
