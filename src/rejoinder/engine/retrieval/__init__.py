"""Retrieval over a project's own files: `ingest` (a file's text, chunked, indexed, on
whichever instance claims it) and `search` (full-text ranking over vector stores, with
attribute filters), which the Vector Stores API and the `file_search` tool share."""

from rejoinder.engine.retrieval.ingest import Ingester
from rejoinder.engine.retrieval.search import search, store_not_found

__all__ = ["Ingester", "search", "store_not_found"]
