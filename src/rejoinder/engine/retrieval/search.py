"""A search of vector stores, as `POST /v1/vector_stores/{id}/search` and the `file_search`
tool run it. Each query is ranked two ways: by full text (BM25 on SQLite, `ts_rank` on
PostgreSQL) and by its embedding's nearness to the chunks' (`vectors`); the two lists are
fused by reciprocal rank (each chunk scores Σ 1 / (60 + its rank), over both rankers and every
query), the files' attributes filtered, and the best `max_num_results` kept. A score is the
fused one over its best possible (first in both lists of one query), so it lies in (0, 1];
`score_threshold` applies to it. A query whose embedding fails is ranked by full text alone.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import orjson

from rejoinder.engine.retrieval.vectors import Vectors
from rejoinder.protocol.errors import not_found
from rejoinder.protocol.vector_stores import SearchResult, matches
from rejoinder.providers.embeddings import Embedder
from rejoinder.store import vector_stores
from rejoinder.store.repository import Store

log = logging.getLogger("rejoinder.retrieval")
CANDIDATES = 50  # chunks each ranker gives per query beyond those asked for, so that filters leave enough
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al.)
Mode = Literal["fused", "lexical", "vector"]


def store_not_found(store_id: str, param: str | None = None) -> Any:
    return not_found(f"Vector store with id '{store_id[:64]}' not found.", param)


def _held(revisions: dict[str, int], store_ids: list[str], param: str | None) -> dict[str, int]:
    """`revisions` (of the stores the project holds), once every one of `store_ids` is among
    them; else a 404 for the first that is not (`param` names where it was given)."""
    for store_id in store_ids:
        if store_id not in revisions:
            raise store_not_found(store_id, param)
    return revisions


class Retrieval:
    """The project's vector stores as one searchable whole: the database, the embedder and the
    vectors held in memory."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self.vectors = Vectors()

    async def require(self, project: str, store_ids: list[str], param: str | None = None) -> None:
        """Every one of `store_ids` is the project's: a 404 (naming `param`) for the first that is not."""
        _held(await self.store.transact(vector_stores.revisions, project, store_ids), store_ids, param)

    async def search(
        self,
        project: str,
        store_ids: list[str],
        queries: list[str],
        wanted: int,
        filters: dict[str, Any] | None = None,
        threshold: float = 0.0,
        param: str | None = None,
        mode: Mode = "fused",
    ) -> list[SearchResult]:
        """The best chunks for the queries; a store the project does not hold is a 404 (`param` names it)."""
        embedded = None
        if mode != "lexical":
            try:
                embedded = await self.embedder.embed(queries)
            except Exception as exc:  # an embeddings upstream down: full text still answers
                log.warning("could not embed a search's queries: %s", type(exc).__name__)
        return await self.store.transact(self._search, project, store_ids, queries, embedded, wanted, filters, threshold, param, mode)

    def _search(
        self,
        conn: Any,
        project: str,
        store_ids: list[str],
        queries: list[str],
        embedded: Any,
        wanted: int,
        filters: Any,
        threshold: float,
        param: str | None,
        mode: Mode,
    ) -> list[SearchResult]:
        revisions = _held(vector_stores.revisions(conn, project, store_ids), store_ids, param)
        fused: dict[tuple[str, str, int], float] = {}
        chunks: dict[tuple[str, str, int], vector_stores.Hit] = {}
        for i, query in enumerate(queries):
            rankings = []
            if mode != "vector":
                rankings.append(vector_stores.search(conn, project, store_ids, query, wanted + CANDIDATES))
            if embedded is not None:
                rankings.append(self.vectors.nearest(conn, project, revisions, embedded[i], wanted + CANDIDATES))
            for ranking in rankings:
                for rank, hit in enumerate(ranking):
                    key = (hit.store_id, hit.file_id, hit.position)
                    fused[key] = fused.get(key, 0.0) + 1 / (RRF_K + rank + 1)
                    chunks.setdefault(key, hit)
        best = (2 if mode == "fused" and embedded is not None else 1) / (RRF_K + 1)
        about = vector_stores.described(conn, project, store_ids, list({key[1] for key in fused}))
        results = []
        for key in sorted(fused, key=lambda key: -fused[key]):
            hit = chunks[key]
            filename, attributes = about.get((hit.store_id, hit.file_id), (hit.file_id, b"{}"))
            attributes = orjson.loads(attributes)
            score = min(1.0, fused[key] / best)
            if score < threshold or not matches(filters, attributes):
                continue
            results.append(SearchResult(hit.file_id, filename, round(score, 6), attributes, [{"type": "text", "text": hit.text}]))
            if len(results) == wanted:
                break
        return results
