"""Group commit: small units of work from many threads applied together, one transaction each.

A request that writes one event pays a whole transaction (its locks, its reads, the commit's
``fsync``) for very little work. When many such requests arrive at once, :class:`GroupCommit`
lets them share one: each thread submits its item and waits; one of the waiting threads (the
*leader*) takes every item queued so far, applies them with one call of the ``apply``
function in one :meth:`Database.run`, and hands each thread its own result. While it works,
new items queue up for the next leader, so the busier the process, the larger the groups and
the cheaper each item. A lone request is applied at once, alone: nothing waits for a timer.

There is no background thread: the leader is a submitting thread, and it stops leading once
its own item is done (another waiting thread takes over), so no request works for others
indefinitely. Guarantees:

* every item is applied exactly once, in a transaction with the others of its group, and
  its thread gets the result ``apply`` gave for it, or the exception that failed it;
* two items with the same key are never in one group (the later one waits for the next), so
  ``apply`` may require distinct keys, as a batch of events does;
* a group whose transaction fails is rolled back as a whole and its items are applied again
  one by one, each in its own transaction: one bad item fails alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from parrain.db.session import Database

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")


class _Entry(Generic[I, R]):
    __slots__ = ("done", "error", "item", "key", "result")

    def __init__(self, item: I, key: Hashable) -> None:
        self.item = item
        self.key = key
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[I, R]):
    """Apply items submitted from many threads in shared transactions (see the module doc).

    ``apply(session, items)`` must return one result per item, in order, and must not
    commit; ``key(item)`` names what may not appear twice in one group; at most
    ``max_items`` items go in one group."""

    def __init__(
        self,
        database: Database,
        apply: Callable[[Session, Sequence[I]], Sequence[R]],
        *,
        key: Callable[[I], Hashable],
        max_items: int = 200,
    ) -> None:
        if max_items < 1:
            raise ValueError("a group holds at least one item")
        self._database = database
        self._apply = apply
        self._key = key
        self._max_items = max_items
        self._condition = threading.Condition()
        self._queue: list[_Entry[I, R]] = []
        self._leading = False
        #: Sizes of the groups applied so far (a bounded tail, for tests and diagnostics).
        self.group_sizes: list[int] = []

    def submit(self, item: I) -> R:
        """Apply ``item`` (with whatever else is queued) and return its result, or raise the
        exception that failed it."""
        entry: _Entry[I, R] = _Entry(item, self._key(item))
        with self._condition:
            self._queue.append(entry)
            while not entry.done and self._leading:
                self._condition.wait()
            if not entry.done:
                self._leading = True
        if not entry.done:
            self._lead(entry)
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _lead(self, own: _Entry[I, R]) -> None:
        """Apply groups until ``own`` is done, then let another waiting thread lead."""
        try:
            while not own.done:
                group = self._take()
                self._run(group)
                with self._condition:
                    self._condition.notify_all()
        finally:
            with self._condition:
                self._leading = False
                self._condition.notify_all()

    def _take(self) -> list[_Entry[I, R]]:
        """The oldest queued items with distinct keys, at most ``max_items``."""
        with self._condition:
            group: list[_Entry[I, R]] = []
            keys: set[Hashable] = set()
            rest: list[_Entry[I, R]] = []
            for entry in self._queue:
                if len(group) < self._max_items and entry.key not in keys:
                    group.append(entry)
                    keys.add(entry.key)
                else:
                    rest.append(entry)
            self._queue = rest
            return group

    def _run(self, group: list[_Entry[I, R]]) -> None:
        try:
            self._run_group(group)
        except BaseException as error:  # interrupted: no thread may wait for these forever
            for entry in group:
                if not entry.done:
                    self._finish(entry, error=error)
            raise

    def _run_group(self, group: list[_Entry[I, R]]) -> None:
        items = [entry.item for entry in group]
        try:
            results = self._database.run(lambda session: self._checked(session, items))
        except Exception as error:
            if len(group) == 1:
                self._finish(group[0], error=error)
                return
            for entry in group:  # the group was rolled back: each alone now
                try:
                    [result] = self._database.run(partial(self._checked, items=[entry.item]))
                except Exception as alone:
                    self._finish(entry, error=alone)
                else:
                    self._finish(entry, result=result)
            return
        self._record(len(group))
        for entry, result in zip(group, results, strict=True):
            self._finish(entry, result=result)

    def _checked(self, session: Session, items: Sequence[I]) -> Sequence[R]:
        results = self._apply(session, items)
        if len(results) != len(items):
            raise RuntimeError(f"apply returned {len(results)} results for {len(items)} items")
        return results

    def _finish(
        self, entry: _Entry[I, R], *, result: R | None = None, error: BaseException | None = None
    ) -> None:
        with self._condition:
            entry.result, entry.error, entry.done = result, error, True

    def _record(self, size: int) -> None:
        sizes = self.group_sizes
        sizes.append(size)
        if len(sizes) > 1000:
            del sizes[:500]
