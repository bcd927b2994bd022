"""Prompt templates' text rendered safely: Jinja2 in its immutable sandbox with bounds on what
one step may make (`sandbox`), run in worker processes under CPU and memory limits that are
killed past a deadline (`cage`, the parent side; `worker`, the program)."""

from rejoinder.engine.templating.cage import Cage


def check(text: str, where: str) -> None:
    """A template's text compiles in the sandbox, else a 400 naming `where` (see
    `sandbox.check`). Jinja2 is imported by the first template checked: a gateway without
    templates does not hold it."""
    from rejoinder.engine.templating.sandbox import check as compiled

    compiled(text, where)


__all__ = ["Cage", "check"]
