"""Where a list's pages begin: keyset cursors under EdgeX's offset/limit API.

EdgeX lists by ``offset`` and ``limit`` in ``created`` order (edgemeta breaks ties by the
insertion ``seq``). ``LIMIT ... OFFSET k`` walks ``k`` index entries before the page, so a deep
page of a large service costs more the larger the service grows. This cache remembers, per
filter (a kept count's kind, dim and key, :mod:`edgemeta.store.repos`), the sort key
``(created, seq)`` of the row just before an offset; the page at that offset is then read with
``(created, seq) > key ... LIMIT limit``, which starts inside the index.

A cursor stays right only while the filter's members stay the same: the kept count's
``changes`` (which every insert, delete or move in or out of the filter increases, in the
writing transaction, on every instance sharing the database) is the cache's version, and an
entry made at another version is never used. So a cursor can only make a page cheaper, never
different: the rows are those ``OFFSET`` would have returned.

What is remembered: the offset right after every page served (a device service paging
through its devices asks for it next) and, when a page had to walk more than :data:`STRIDE`
rows to reach its offset, every :data:`STRIDE`-th row on the way (one walk per version; after
it, a random deep page walks fewer than :data:`STRIDE` rows).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

Key = tuple[int, int]  # (created, seq) of a row
Scope = tuple[str, str, str]  # (kind, dim, key) of a kept count

STRIDE = 1000
MAX_SCOPES = 1024  # filters remembered (least recently used forgotten first)
MAX_CURSORS = 4096  # cursors per filter


@dataclass(slots=True)
class _Entry:
    version: int
    offsets: list[int] = field(default_factory=list)  # sorted
    keys: dict[int, Key] = field(default_factory=dict)


class ListCursors:
    """The cursors of one database's lists (shared by every transaction of a store)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Scope, _Entry] = OrderedDict()

    def nearest(self, scope: Scope, version: int, offset: int) -> tuple[int, Key] | None:
        """The greatest remembered offset ``<= offset`` at ``version`` and its row's key."""
        entry = self._entries.get(scope)
        if entry is None or entry.version != version:
            return None
        self._entries.move_to_end(scope)
        i = bisect.bisect_right(entry.offsets, offset)
        if i == 0:
            return None
        at = entry.offsets[i - 1]
        return at, entry.keys[at]

    def remember(self, scope: Scope, version: int, offset: int, key: Key) -> None:
        """The row just before ``offset`` has sort key ``key`` (at ``version``)."""
        entry = self._entries.get(scope)
        if entry is None or entry.version != version:
            entry = _Entry(version)
            self._entries[scope] = entry
            if len(self._entries) > MAX_SCOPES:
                self._entries.popitem(last=False)
        self._entries.move_to_end(scope)
        if offset in entry.keys:
            return
        if len(entry.offsets) >= MAX_CURSORS:
            # Keep the stride's cursors (they bound every walk); drop a page end.
            for i, at in enumerate(entry.offsets):
                if at % STRIDE:
                    del entry.offsets[i]
                    del entry.keys[at]
                    break
            else:
                return
        bisect.insort(entry.offsets, offset)
        entry.keys[offset] = key
