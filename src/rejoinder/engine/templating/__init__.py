"""Prompt templates' text rendered safely: Jinja2 in its immutable sandbox with bounds on what
one step may make (`sandbox`), run in worker processes under CPU and memory limits that are
killed past a deadline (`cage`, the parent side; `worker`, the program)."""

from rejoinder.engine.templating.cage import Cage
from rejoinder.engine.templating.sandbox import check

__all__ = ["Cage", "check"]
