"""Each vector store's chunk vectors, held in memory per instance and scored in process with
numpy (a dot product: the vectors are unit length). A store's `revision`, bumped by every
change to its chunks, tells a stale copy: one small read per search checks it, and a changed
store is read again whole. 10,000 chunks of 256 dimensions are 10 MB, scored in about a
millisecond; at most `KEPT` stores are held, the least recently searched let go."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from rejoinder.store import vector_stores

KEPT = 16  # stores held at once


class Held(NamedTuple):
    revision: int
    file_ids: list[str]
    positions: list[int]
    texts: list[str]
    matrix: Any  # float32 rows, one per chunk (none: `None`)


class Vectors:
    def __init__(self) -> None:
        self.held: OrderedDict[tuple[str, str], Held] = OrderedDict()

    def nearest(self, conn: Any, project: str, revisions: dict[str, int], query: Any, limit: int) -> list[vector_stores.Hit]:
        """The chunks of the stores (by id, at their current revisions) closest to `query` (a
        unit vector), best first; a chunk without a vector of the query's length (another
        model's) is not among them."""
        import numpy

        hits: list[vector_stores.Hit] = []
        for store_id, revision in revisions.items():
            held = self._current(conn, project, store_id, revision, len(query))
            if held.matrix is None:
                continue
            scores = held.matrix @ query
            best = numpy.argpartition(-scores, limit)[:limit] if len(scores) > limit else numpy.arange(len(scores))
            hits += [vector_stores.Hit(store_id, held.file_ids[i], held.positions[i], held.texts[i], float(scores[i])) for i in best]
        return sorted(hits, key=lambda hit: -hit.score)[:limit]

    def _current(self, conn: Any, project: str, store_id: str, revision: int, dimensions: int) -> Held:
        import numpy

        key = (project, store_id)
        held = self.held.get(key)
        if held is None or held.revision != revision:
            rows = [row for row in vector_stores.chunk_vectors(conn, project, store_id) if row[3] is not None and len(row[3]) == dimensions * 4]
            matrix = numpy.frombuffer(b"".join(row[3] for row in rows), dtype="float32").reshape(len(rows), dimensions) if rows else None
            held = Held(revision, [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows], matrix)
            self.held[key] = held
        self.held.move_to_end(key)
        while len(self.held) > KEPT:
            self.held.popitem(last=False)
        return held
