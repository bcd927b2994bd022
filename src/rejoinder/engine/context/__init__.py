"""What a model turn sees and must give back: the earlier chain and item references
(`assemble`), a conversation's items (`history`), stored files named by id, inline (`files`),
the context fitted to the model's window (`fitting`) or compacted (`compaction`), prompt
templates (`prompt_templates`; their text is rendered by `engine.templating`), and output held
to its schema (`retries`)."""

from rejoinder.engine.context import compaction, files
from rejoinder.engine.context.assemble import check_calls, check_sealed, earlier_items, model_view, resolve_input
from rejoinder.engine.context.fitting import estimated_usage, exceeds, fit
from rejoinder.engine.context.history import History
from rejoinder.engine.context.prompt_templates import Found, Prompts, check_template, found_of
from rejoinder.engine.context.retries import validated

__all__ = [
    "Found",
    "History",
    "Prompts",
    "check_calls",
    "check_sealed",
    "check_template",
    "compaction",
    "earlier_items",
    "estimated_usage",
    "exceeds",
    "files",
    "fit",
    "found_of",
    "model_view",
    "resolve_input",
    "validated",
]
