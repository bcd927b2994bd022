"""`file_search` run by the gateway on every provider, over the project's vector stores
(`engine.retrieval`): the model is offered a `file_search` function taking `{"queries": […]}`
(one call may search several phrasings); each call becomes a `file_search_call` item with
OpenAI's events (`in_progress`, `searching`, `completed`), its `results` shown under
`include: ["file_search_call.results"]`, and the files it found are cited (`file_citation`)
at the end of the answer's text. `engine.tools.rounds` runs the calls between model turns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from rejoinder.engine.retrieval import Retrieval
from rejoinder.protocol.errors import invalid
from rejoinder.protocol.ids import new_id
from rejoinder.protocol.tools import FunctionTool
from rejoinder.protocol.vector_stores import check_search
from rejoinder.providers.base import Annotation, Delta, HostedEvent, HostedOutput, HostedStart

TOOL_NAME = "file_search"
TOOL = FunctionTool(
    TOOL_NAME,
    "Search the user's uploaded files. Returns the most relevant passages, each with the file it comes from.",
    {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}, "description": "One or more phrasings of what to look for."}},
        "required": ["queries"],
    },
)
RESULTS = "file_search_call.results"


class FileSearch(NamedTuple):
    """A request's `file_search` tool, checked: where it searches and how."""

    store_ids: list[str]
    max_num_results: int
    filters: dict[str, Any] | None
    threshold: float
    project: str
    retrieval: Retrieval
    with_results: bool  # `include` asks for each call's results


def prepared(tool: dict[str, Any], index: int, project: str, retrieval: Retrieval, include: list[str]) -> FileSearch:
    param = f"tools[{index}]."
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise invalid(param + "vector_store_ids", "A file_search tool needs 'vector_store_ids': a non-empty list of vector store ids.")
    wanted = tool.get("max_num_results", 10)
    if type(wanted) is not int:
        raise invalid(param + "max_num_results", "Invalid 'max_num_results': expected an integer.")
    check_search(wanted, tool.get("filters"), param)
    ranking = tool.get("ranking_options") or {}
    threshold = ranking.get("score_threshold", 0.0) if isinstance(ranking, dict) else 0.0
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise invalid(param + "ranking_options.score_threshold", "Invalid 'score_threshold': expected a number from 0 to 1.")
    return FileSearch(list(dict.fromkeys(ids)), wanted, tool.get("filters"), float(threshold), project, retrieval, RESULTS in include)


def queries_of(arguments: str) -> list[str]:
    """A call's queries, from its JSON arguments (a lone `query` too; anything unreadable: none)."""
    try:
        found = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(found, dict):
        return []
    queries = found.get("queries", [found.get("query")])
    return [query for query in queries if isinstance(query, str) and query.strip()][:10] if isinstance(queries, list) else []


def started(item: dict[str, Any]) -> list[Delta]:
    return [HostedStart(dict(item)), _event("in_progress", item), _event("searching", item)]


async def run(spec: FileSearch, queries: list[str]) -> tuple[str | None, Any, list[dict[str, Any]]]:
    """What the model is told, the error if the search failed, and the results."""
    if not queries:
        return None, "No queries were given.", []
    try:
        found = await spec.retrieval.search(spec.project, spec.store_ids, queries, spec.max_num_results, spec.filters, spec.threshold)
    except Exception as exc:  # a store deleted meanwhile, a busy database: the model is told, and goes on
        return None, f"The file search failed ({getattr(exc, 'message', type(exc).__name__)}).", []
    results = [{"file_id": r.file_id, "filename": r.filename, "score": r.score, "attributes": r.attributes, "text": r.content[0]["text"]} for r in found]
    told = "\n\n".join(f"[{i + 1}] {r['filename']} ({r['file_id']})\n{r['text']}" for i, r in enumerate(results))
    return told or "No results.", None, results


def ended(item: dict[str, Any], queries: list[str], results: list[dict[str, Any]], failed: bool, with_results: bool) -> list[Delta]:
    done = {**item, "status": "failed" if failed else "completed", "queries": queries}
    if with_results:
        done["results"] = results
    return [_event("completed", done), HostedOutput(done)]


def new_item() -> dict[str, Any]:
    return {"id": new_id("fs"), "type": "file_search_call", "status": "in_progress", "queries": []}


def citations(block: str, index: int, cited: dict[str, str]) -> list[Delta]:
    """The files a search found, cited at `index` (the end) of an answer's text block."""
    return [Annotation(block, {"type": "file_citation", "file_id": file_id, "filename": filename, "index": index}) for file_id, filename in cited.items()]


def _event(stage: str, item: dict[str, Any]) -> HostedEvent:
    return HostedEvent(f"response.file_search_call.{stage}", item["id"], {})
