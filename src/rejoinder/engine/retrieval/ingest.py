"""Ingestion: a file put in a vector store waits, owned by no instance, until one claims it
(`Ingester`, on every instance, polling like the background runner); that instance reads its
text, cuts it into chunks of the store file's strategy, embeds them, and commits them with `completed`, or
`failed` with OpenAI's `last_error` (a corrupt PDF fails its file, not the rest of its batch).
If the instance dies meanwhile, `store.liveness` hands the file back, and another ingests it.

Parsing and chunking run on a thread, off the event loop."""

from __future__ import annotations

import asyncio
import logging

from rejoinder.engine.polling import until_woken
from rejoinder.engine.retrieval.extract import Unreadable, text_of
from rejoinder.providers.embeddings import Embedder
from rejoinder.providers.tokens import windows
from rejoinder.store import vector_stores
from rejoinder.store.repository import Store
from rejoinder.store.vector_stores import Pending

log = logging.getLogger("rejoinder.retrieval")
AT_ONCE = 2  # files one instance ingests at a time
# Seconds between looks for files waiting with no instance on them. A file added through an
# instance wakes that instance's ingester at once; the look is for those another instance left
# (it died, its heartbeat lapsed), so it can be rare: at the background queue's pace, it cost
# an idle gateway 0.4 % of a core.
POLL = 5.0


class Ingester:
    def __init__(self, store: Store, embedder: Embedder, poll: float = POLL) -> None:
        self.store = store
        self.embedder = embedder
        self.poll = poll
        self.wake = asyncio.Event()  # set by an upload on this instance: claim now, not at the next poll
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                ingested = False
                while claimed := await self.store.transact(vector_stores.claim, self.store.instance, AT_ONCE):
                    await asyncio.gather(*(self._ingest(pending) for pending in claimed))
                    ingested = True
                if ingested:  # the planner's statistics, fresh for the chunks just written
                    await self.store.transact(vector_stores.analyze)
            except Exception as exc:  # a busy or vanished database: try again at the next poll
                log.warning("ingestion: %s", type(exc).__name__)
            await until_woken(self.wake, self.poll)

    async def _ingest(self, pending: Pending) -> None:
        found = await self.store.transact(vector_stores.content_of, pending.project, pending.file_id)
        chunks: list[str] = []
        error = None
        if found is None:
            error = {"code": "invalid_file", "message": "The file was deleted before it could be read."}
        else:
            try:
                chunks = await asyncio.to_thread(_chunks, *found, pending.chunking)
            except Unreadable as exc:
                error = {"code": exc.code, "message": str(exc)}
            except Exception as exc:  # a parser's own failure is this file's, not the batch's
                log.warning("could not ingest %s: %s", pending.file_id, type(exc).__name__)
                error = {"code": "server_error", "message": f"The file could not be processed ({type(exc).__name__})."}
        vectors: list[bytes | None] = []
        if chunks:
            try:
                vectors = [row.tobytes() for row in await self.embedder.embed(chunks)]
            except Exception as exc:  # an embeddings upstream down: the file fails, and can be added again
                log.warning("could not embed %s: %s", pending.file_id, type(exc).__name__)
                chunks, error = [], {"code": "server_error", "message": f"The file's chunks could not be embedded ({type(exc).__name__})."}
        await self.store.write(vector_stores.finish, pending, self.store.instance, chunks, vectors, error)


def _chunks(filename: str, media_type: str, content: bytes, chunking: dict[str, int]) -> list[str]:
    text = text_of(filename, media_type, content)
    pieces = windows(text, chunking["max_chunk_size_tokens"], chunking["chunk_overlap_tokens"]) if text.strip() else []
    return [piece for piece in pieces if piece.strip()]
