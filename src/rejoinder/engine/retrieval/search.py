"""A search of vector stores, as `POST /v1/vector_stores/{id}/search` and the `file_search`
tool run it: each query ranked by full text (BM25 on SQLite, `ts_rank_cd` on PostgreSQL), the
chunks of every query merged (a chunk's best score), the files' attributes filtered, the
scores put in [0, 1) (s / (s + 1): the order is the ranker's), `score_threshold` applied and
the best `max_num_results` kept."""

from __future__ import annotations

from typing import Any

import orjson

from rejoinder.protocol.errors import not_found
from rejoinder.protocol.vector_stores import SearchResult, matches
from rejoinder.store import vector_stores
from rejoinder.store.repository import Store

CANDIDATES = 50  # chunks read per query beyond those asked for, so that filters leave enough


def store_not_found(store_id: str, param: str | None = None) -> Any:
    return not_found(f"Vector store with id '{store_id[:64]}' not found.", param)


async def search(
    store: Store,
    project: str,
    store_ids: list[str],
    queries: list[str],
    max_num_results: int,
    filters: dict[str, Any] | None,
    threshold: float,
    param: str | None = None,
) -> list[SearchResult]:
    """The best chunks for the queries; a store the project does not hold is a 404 (`param` names it)."""
    return await store.transact(_search, project, store_ids, queries, max_num_results, filters, threshold, param)


def _search(
    conn: Any, project: str, store_ids: list[str], queries: list[str], wanted: int, filters: Any, threshold: float, param: str | None
) -> list[SearchResult]:
    held = vector_stores.known(conn, project, store_ids)
    for store_id in store_ids:
        if store_id not in held:
            raise store_not_found(store_id, param)
    best: dict[tuple[str, str, int], vector_stores.Hit] = {}
    for query in queries:
        for hit in vector_stores.search(conn, project, store_ids, query, wanted + CANDIDATES):
            key = (hit.store_id, hit.file_id, hit.position)
            if key not in best or best[key].score < hit.score:
                best[key] = hit
    about = vector_stores.described(conn, project, store_ids, list({hit.file_id for hit in best.values()}))
    results = []
    for hit in sorted(best.values(), key=lambda hit: -hit.score):
        filename, attributes = about.get((hit.store_id, hit.file_id), (hit.file_id, b"{}"))
        attributes = orjson.loads(attributes)
        score = hit.score / (hit.score + 1) if hit.score > 0 else 0.0
        if score < threshold or not matches(filters, attributes):
            continue
        results.append(SearchResult(hit.file_id, filename, round(score, 6), attributes, [{"type": "text", "text": hit.text}]))
        if len(results) == wanted:
            break
    return results
