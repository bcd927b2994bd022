"""Conversations' items, kept decoded between turns, so a turn on a long conversation reads
and decodes only what was added since the last turn here.

Each instance keeps the latest conversations it served (`_KEPT`): for each, the revision it
read (a removal bumps it: then everything is read again), the position after the last item it
read, and the items. Appends need no invalidation: they only ever add positions past the
ones read. The lists are never changed in place (a turn still using one keeps it whole).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from sqlalchemy.exc import IntegrityError

from rejoinder.protocol.errors import ApiError
from rejoinder.protocol.items import Item, decode_item
from rejoinder.store import conversations
from rejoinder.store.repository import Store

_KEPT = 256  # conversations whose items one instance keeps decoded


class History:
    def __init__(self, store: Store, create_missing: bool) -> None:
        self.store = store
        self.create_missing = create_missing
        self.kept: OrderedDict[tuple[str, str], tuple[int, int, list[Item]]] = OrderedDict()  # (project, id) → (revision, next position, items)

    async def items(self, conversation_id: str, project: str) -> list[Item]:
        """A conversation's items, oldest first. One that does not exist (in `project`) is a
        404, or with `create_missing_conversations` is created under the id the client chose."""
        key = (project, conversation_id)
        revision, position, known = self.kept.get(key, (-1, 0, []))
        found = await self.store.transact(conversations.since, conversation_id, project, revision, position)
        if found is None:
            self.kept.pop(key, None)
            return await self._missing(conversation_id, project)
        current, rows = found
        if current != revision:
            known = []
        if rows:
            known = known + [decode_item(body) for _, body in rows]
            position = rows[-1][0] + 1
        self.kept[key] = (current, position, known)
        self.kept.move_to_end(key)
        if len(self.kept) > _KEPT:
            self.kept.popitem(last=False)
        return known

    async def _missing(self, conversation_id: str, project: str) -> list[Item]:
        missing = ApiError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation", code="not_found")
        if not self.create_missing:
            raise missing
        try:
            await self.store.write(conversations.create, conversation_id, project, int(time.time()), b"{}", [])
        except IntegrityError:  # another turn created it first
            if await self.store.transact(conversations.get, conversation_id, project) is None:
                raise missing from None
        return []
