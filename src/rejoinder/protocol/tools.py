"""Tools a request offers and its `tool_choice`: function, custom and namespace tools the
gateway translates for every upstream, and hosted tools only an upstream can run.

`decode_tools` validates them and says what they come to (`Tools`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta, Struct

from rejoinder.protocol.checks import type_of, validation_error
from rejoinder.protocol.errors import invalid


class FunctionTool(Struct, tag="function", tag_field="type"):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(Struct, tag="custom", tag_field="type"):
    """A freeform tool: the model writes one string. Upstreams see a function with one string
    parameter, `input`, and the builder turns its calls back into `custom_tool_call` items."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    description: str | None = None
    format: dict[str, Any] | None = None

    def as_function(self) -> FunctionTool:
        return FunctionTool(self.name, self.description, CUSTOM_TOOL_PARAMETERS)


class NamespaceTool(Struct, tag="namespace", tag_field="type"):
    """Function and custom tools grouped under a name (the Codex CLI sends these). Upstreams
    see each inner tool as `<namespace>__<name>` (`upstream_name`); its calls come back as
    items with `namespace` and `name`, as the spec defines."""

    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    tools: Annotated[list[dict[str, Any]], Meta(min_length=1)]
    description: str | None = None


NAMESPACE_SEPARATOR = "__"


def upstream_name(namespace: str, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}"


CUSTOM_TOOL_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"], "additionalProperties": False}


class NamedFunction(Struct, tag="function", tag_field="type"):
    name: str


class NamedCustom(Struct, tag="custom", tag_field="type"):
    name: str


class NamedMcp(Struct, tag="mcp", tag_field="type", omit_defaults=True):
    """A tool of an MCP server the model must call, or (without `name`) any of its tools."""

    server_label: str
    name: str | None = None


class AllowedTool(Struct, omit_defaults=True):
    type: Literal["function", "custom", "mcp"]
    name: str | None = None  # a function's or custom tool's; of an `mcp` entry, one of its server's tools (or any)
    server_label: str | None = None  # an `mcp` entry's server


class AllowedTools(Struct, tag="allowed_tools", tag_field="type"):
    mode: Literal["auto", "required"]
    tools: list[AllowedTool]


ToolChoice = Union[Literal["none", "auto", "required"], NamedFunction, NamedCustom, NamedMcp, AllowedTools]


class Tools(Struct):
    """What a request's `tools` and `tool_choice` come to."""

    functions: list[FunctionTool]  # every tool the model may call, custom ones as functions, under upstream names
    custom: frozenset[str]  # the (upstream) names of custom tools: their calls come back as custom_tool_call
    namespaced: dict[str, tuple[str, str]]  # upstream name → (namespace, name)
    hosted: list[tuple[int, dict[str, Any]]]  # (index in `tools`, tool) of tools only an upstream runs
    echo: list[dict[str, Any]]  # the Response's `tools`
    choice: Any  # the validated `tool_choice` (a custom tool's named as the function it is offered as)
    searched: bool = False  # web search is run by the gateway, offered as a function (see `engine.tools.searching`)


def decode_tools(raw_tools: list[dict[str, Any]], raw_choice: Any) -> Tools:
    """Validate `tools` and `tool_choice`."""
    tools: list[FunctionTool | CustomTool] = []
    hosted, echo, namespaced = [], [], {}
    for i, raw in enumerate(raw_tools):
        if type_of(raw) in HOSTED_TOOL_TYPES:
            hosted.append((i, raw))
            echo.append(raw)
        elif type_of(raw) == "namespace":
            tools += _namespace(raw, i, namespaced)
            echo.append(raw)
        else:
            tools.append(_tool(raw, f"tools[{i}]"))
            echo.append(msgspec.to_builtins(tools[-1]))
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise invalid("tools", f"Duplicate tool name '{duplicate}' (a namespace's tools are offered as '<namespace>__<name>').")
    functions = [tool.as_function() if isinstance(tool, CustomTool) else tool for tool in tools]
    choice = _tool_choice(raw_choice, functions, [tool for _, tool in hosted])
    return Tools(functions, frozenset(tool.name for tool in tools if isinstance(tool, CustomTool)), namespaced, hosted, echo, choice)


def _tool(tool: dict[str, Any], param: str) -> FunctionTool | CustomTool:
    kind = type_of(tool)
    if kind not in ("function", "custom"):
        raise invalid(f"{param}.type", f"Tool type '{kind}' is not supported by this gateway.", "unsupported_value")
    try:
        return msgspec.convert(tool, FunctionTool if kind == "function" else CustomTool)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, param) from None


def _namespace(raw: dict[str, Any], i: int, namespaced: dict[str, tuple[str, str]]) -> list[FunctionTool | CustomTool]:
    """A namespace's tools under their upstream names; `namespaced` learns upstream name →
    (namespace, name)."""
    try:
        namespace = msgspec.convert(raw, NamespaceTool)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, f"tools[{i}]") from None
    inner = []
    for j, entry in enumerate(namespace.tools):
        tool = _tool(entry, f"tools[{i}].tools[{j}]")
        name = upstream_name(namespace.name, tool.name)
        namespaced[name] = (namespace.name, tool.name)
        inner.append(msgspec.structs.replace(tool, name=name))
    return inner


_CHOICE_WORDS = frozenset(("none", "auto", "required"))
# A `tool_choice` of a hosted tool's type (the spec's list), and the tool types it picks.
HOSTED_CHOICE_TYPES = {
    "file_search": {"file_search"},
    "web_search_preview": {"web_search_preview", "web_search_preview_2025_03_11"},
    "web_search_preview_2025_03_11": {"web_search_preview", "web_search_preview_2025_03_11"},
    "computer": {"computer_use_preview"},
    "computer_use": {"computer_use_preview"},
    "computer_use_preview": {"computer_use_preview"},
    "image_generation": {"image_generation"},
    "code_interpreter": {"code_interpreter"},
}
WEB_SEARCH_TOOL_TYPES = frozenset(("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"))
# Tools a native Responses upstream runs on its own side; passed through to it as given.
HOSTED_TOOL_TYPES = WEB_SEARCH_TOOL_TYPES | frozenset(
    (
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "local_shell",
        "shell",
        "apply_patch",
        "mcp",
    )
)


def _tool_choice(raw: Any, tools: list[FunctionTool], hosted: list[dict[str, Any]]) -> Any:
    if isinstance(raw, str) and raw in _CHOICE_WORDS:
        choice = raw  # the common case, without msgspec's generic type lookup
    elif type_of(raw) in HOSTED_CHOICE_TYPES:
        if not {tool["type"] for tool in hosted} & HOSTED_CHOICE_TYPES[raw["type"]]:
            raise invalid("tool_choice", f"Tool choice '{raw['type']}' not found in 'tools' parameter.")
        return raw  # a hosted tool: passed to the upstream that runs it
    else:
        try:
            choice = msgspec.convert(raw, ToolChoice)
        except msgspec.ValidationError as exc:
            raise validation_error(exc, "tool_choice") from None
    if isinstance(choice, NamedCustom):  # upstreams see custom tools as functions
        choice = NamedFunction(choice.name)
    names = {tool.name for tool in tools}
    servers = {tool.get("server_label") for tool in hosted if tool.get("type") == "mcp"}
    named = [choice] if isinstance(choice, (NamedFunction, NamedMcp)) else choice.tools if isinstance(choice, AllowedTools) else []
    for entry in named:
        kind = entry.type if isinstance(entry, AllowedTool) else "mcp" if isinstance(entry, NamedMcp) else "function"
        if kind == "mcp":
            if entry.server_label is None:
                raise invalid("tool_choice", "An 'mcp' entry of 'tool_choice.tools' needs a 'server_label'.")
            if entry.server_label not in servers:
                raise invalid("tool_choice", f"Tool choice 'mcp' names the server '{entry.server_label}', which is not in 'tools' parameter.")
        elif entry.name is None:
            raise invalid("tool_choice", f"A '{kind}' entry of 'tool_choice.tools' needs a 'name'.")
        elif entry.name not in names:
            raise invalid("tool_choice", f"Tool choice '{entry.name}' not found in 'tools' parameter.")
    if choice == "required" and not tools and not hosted:
        raise invalid("tool_choice", "Tool choice 'required' must be specified with 'tools' parameter.")
    return choice


def relaxed(choice: Any) -> Any:
    """A choice that forced a tool call, once a call the gateway runs has met it: the model's
    next turn may answer, or it would call again until the rounds run out (the Agents SDK
    resets its tool choice after a call for the same reason)."""
    if choice == "required" or isinstance(choice, NamedFunction):
        return "auto"
    if isinstance(choice, AllowedTools) and choice.mode == "required":
        return AllowedTools("auto", choice.tools)
    return choice
