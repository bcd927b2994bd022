"""Which of an MCP server's tools a request offers the model (`allowed_tools`) and which of
those wait for the client's approval (`require_approval`), by OpenAI's tool filters,
`{tool_names, read_only}`. A tool is read-only when its server annotates it so (MCP's
`readOnlyHint`, listed as `annotations.read_only`); a filter takes a tool when every criterion it
sets holds. Each is checked before the server is contacted, so a bad one costs no connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rejoinder.protocol.errors import invalid

Takes = Callable[[dict[str, Any]], bool]  # a listed tool ({name, annotations, …}) → whether the filter takes it


def read_only(listed: dict[str, Any]) -> bool:
    annotations = listed.get("annotations")
    return isinstance(annotations, dict) and annotations.get("read_only") is True


def allowed(given: Any, index: int) -> Takes:
    """`allowed_tools`: a list of names, a filter, or nothing (every tool)."""
    if given is None:
        return lambda _: True
    return _filter({"tool_names": given} if isinstance(given, list) else given, f"tools[{index}].allowed_tools") or (lambda _: True)


def approval(policy: Any, index: int) -> Takes:
    """`require_approval`: `always` (the default), `never`, or `{always: filter, never: filter}`:
    a tool waits unless the `never` filter takes it and the `always` filter does not."""
    param = f"tools[{index}].require_approval"
    if policy in ("always", "never"):
        return lambda _: policy == "always"
    if not (isinstance(policy, dict) and set(policy) <= {"always", "never"}):
        raise invalid(param, "Invalid 'require_approval': expected 'always', 'never' or {always, never}.")
    never, always = (_filter(policy.get(key) or {}, f"{param}.{key}") for key in ("never", "always"))
    return lambda listed: never is None or not never(listed) or (always is not None and always(listed))


def _filter(given: Any, param: str) -> Takes | None:
    """A filter as a test of a listed tool; None for one that sets no criterion."""
    if not (isinstance(given, dict) and set(given) <= {"tool_names", "read_only"}):
        raise invalid(param, f"Invalid '{param.rsplit('.', 1)[-1]}': expected a list of tool names or {{tool_names, read_only}}.")
    names, only = given.get("tool_names"), given.get("read_only")
    if names is not None and not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise invalid(f"{param}.tool_names", "Invalid 'tool_names': expected a list of tool names.")
    if only is not None and not isinstance(only, bool):
        raise invalid(f"{param}.read_only", "Invalid 'read_only': expected a boolean.")
    if names is None and only is None:
        return None
    wanted = frozenset(names or ())
    return lambda listed: (names is None or listed["name"] in wanted) and (only is None or read_only(listed) == only)
