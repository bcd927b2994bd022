"""Retrieval over a project's own files: `ingest` (a file's text, chunked, embedded and
indexed, on whichever instance claims it), `vectors` (each store's vectors held in memory) and
`search` (full text and embeddings fused, with attribute filters), which the Vector Stores API
and the `file_search` tool share."""

from rejoinder.engine.retrieval.ingest import Ingester
from rejoinder.engine.retrieval.search import Retrieval, store_not_found

__all__ = ["Ingester", "Retrieval", "store_not_found"]
