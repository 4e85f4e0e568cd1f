"""The consent checks' in-process cache of members' rows, kept exact by a version (ADR 25).

Database triggers add one to ``consent_state.version`` on every write that can change a
check's answer and log the member concerned in ``consent_changes`` (``NULL``: every member).
A batch of checks first reads the current version and the members changed since the
cache's version, in one statement (one snapshot); the cache drops those members (or
everything, when the log cannot prove it holds every change since) and moves to that
version. What it then holds is true at that version or later, so a change committed before
the check started is always seen. Rows read for members the cache lacks are kept only if
the cache is still at the version the batch read: a batch that raced a newer one does not
put back rows the newer one dropped.

One cache per connection pool (per database a process uses), bounded in members, least
recently checked dropped first.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from typing import Generic, TypeVar
from uuid import UUID

from parrain.consent.repository import CheckVersion

E = TypeVar("E")

#: Most changes read to bring a cache up to date; further behind, it starts again empty.
MAX_CHANGES = 5_000


class CheckCache(Generic[E]):
    """Members' parsed check rows (``E``) valid at ``version`` of the database ``epoch``."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.epoch: str | None = None
        self.version = -1
        self._entries: OrderedDict[UUID, E] = OrderedDict()
        self._lock = threading.Lock()
        #: How many times it dropped everything (for tests and the benchmark).
        self.clears = 0

    def __len__(self) -> int:
        return len(self._entries)

    def since(self) -> int:
        """The version whose later changes the next batch should read (a huge number
        when the cache is empty: then it needs none)."""
        with self._lock:
            return self.version if self._entries else 2**62

    def advance(self, read: CheckVersion, since: int) -> None:
        """Bring the cache to ``read`` (read with the changes after ``since``)."""
        with self._lock:
            if read.epoch != self.epoch:
                self._clear()
                self.epoch, self.version = read.epoch, read.version
                return
            if read.version <= self.version:
                return  # another batch already moved it on (or to this very version)
            if not self._entries:
                self.version = read.version
                return
            if since > self.version or not read.complete or None in read.changed:
                # (since > version: the cache was emptied and refilled since it was asked)
                self._clear()
            else:
                # The changes after ``since`` include those after our version (since may
                # only be behind it: it was read earlier, and the version only grows).
                for member_id in read.changed:
                    self._entries.pop(member_id, None)  # type: ignore[arg-type]
            self.version = read.version

    def get_many(self, member_ids: Iterable[UUID]) -> dict[UUID, E]:
        """The entries held for these members (each marked as just used)."""
        found: dict[UUID, E] = {}
        entries = self._entries
        with self._lock:
            for member_id in member_ids:
                entry = entries.get(member_id)
                if entry is not None:
                    entries.move_to_end(member_id)
                    found[member_id] = entry
        return found

    def store(self, read: CheckVersion, entries: Mapping[UUID, E]) -> bool:
        """Keep ``entries`` (read by a batch that read ``read``) if the cache is still at
        that version; ``False`` if they were not kept."""
        with self._lock:
            if read.epoch != self.epoch or read.version != self.version:
                return False
            held = self._entries
            held.update(entries)
            while len(held) > self.members:
                held.popitem(last=False)
            return True

    def evict(self, member_ids: Collection[UUID]) -> None:
        with self._lock:
            for member_id in member_ids:
                self._entries.pop(member_id, None)

    def clear(self) -> None:
        with self._lock:
            self._clear()
            self.epoch, self.version = None, -1

    def _clear(self) -> None:
        if self._entries:
            self.clears += 1
        self._entries.clear()


class CacheRegistry(Generic[E]):
    """One :class:`CheckCache` per connection pool, created on first use."""

    def __init__(self, members: int) -> None:
        self.members = members
        self._caches: weakref.WeakKeyDictionary[object, CheckCache[E]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, pool: object) -> CheckCache[E] | None:
        """The cache of ``pool`` (``None`` when caching is off)."""
        if self.members <= 0:
            return None
        cache = self._caches.get(pool)
        if cache is None:
            with self._lock:
                cache = self._caches.get(pool)
                if cache is None:
                    cache = self._caches[pool] = CheckCache(self.members)
        return cache

    def resize(self, members: int) -> None:
        """Hold at most ``members`` members from now on (0: no cache); drops the caches."""
        with self._lock:
            self.members = members
            for cache in list(self._caches.values()):
                cache.clear()
            self._caches = weakref.WeakKeyDictionary()
