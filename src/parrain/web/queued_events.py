"""Single events received for later (``Prefer: respond-async``, ADR 28), queued together.

A queued event costs its transaction far more than its own row: the ``BEGIN``, the
commit's ``fsync``, the round trips. When many requests queue an event at once,
:class:`QueuedEvents` queues them in one transaction: each request's coroutine hands its
event over and awaits it; the first one finding nobody at work starts a flush task,
which lets the requests already arriving reach it (a few turns of the event loop, for as
long as more keep coming, at most :data:`GATHER_SECONDS`), queues them all at once, hands
each request its result, and goes on while more arrived meanwhile. A group is sealed
together (one data key, wrapped once: :func:`parrain.referrals.queue.seal_events`), then
queued by one statement that claims every id (:func:`parrain.referrals.queue.
queue_events`), run by :meth:`Database.run_statements`: on PostgreSQL it commits by
itself, one round trip; on SQLite it is a write transaction.

That work runs on one thread of its own per process, one group at a time, while the event
loop goes on reading requests (and gathering the next group) during its round trips or its
``fsync``. Run on the event loop itself it cost less per group, but the process then read
nothing while the disk or the database answered, and under load it took 10 % fewer events
(the events benchmark, docs/performance.md); the pool of :func:`~parrain.web.deps.
run_blocking` would hand groups to many threads that only wait on each other.

Unlike :class:`parrain.db.group_commit.GroupCommit` (which single events applied at once
use), no thread waits per request. A group whose transaction fails fails every request in
it (a 500: nothing about one event can make queuing it fail; an id sent twice in one group
is answered like a replay, :func:`parrain.referrals.queue.queue_events`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.members.service import MemberKeys
from parrain.referrals import queue
from parrain.referrals.errors import EventIdReused
from parrain.referrals.schemas import Event, EventOutcome

Result = EventOutcome | EventIdReused

#: Turns of the event loop a flush waits for one more request before it stops gathering.
#: A request read from its socket takes a few turns to reach :meth:`QueuedEvents.submit`;
#: with fewer, groups under load were a third as large and each event paid a third of a
#: commit's fsync (docs/performance.md).
GATHER_TURNS = 10
#: Longest a flush gathers requests before it queues what it has.
GATHER_SECONDS = 0.002


class QueuedEvents:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        keys: MemberKeys,
        *,
        on_queued: Callable[[], None] = lambda: None,
        max_items: int = 500,
    ) -> None:
        if max_items < 1:
            raise ValueError("a group holds at least one event")
        self._database = database
        self._clock = clock
        self._keys = keys
        self._on_queued = on_queued
        self._max_items = max_items
        self._waiting: list[tuple[Event, asyncio.Future[Result]]] = []
        self._flush: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        #: Sizes of the groups queued so far (a bounded tail, for tests and diagnostics).
        self.group_sizes: list[int] = []

    async def submit(self, event: Event) -> Result:
        """Queue ``event`` (with whatever else is handed over) and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((event, future))
        if self._flush is None or self._flush.get_loop() is not loop:
            # (Another loop's flush: only in tests, whose client may run each request on an
            # event loop of its own, closed with pending tasks.)
            self._flush = loop.create_task(self._flush_all())
        return await future

    async def _gather(self) -> None:
        """Wait while requests keep handing events over (see the module doc)."""
        deadline = time.monotonic() + GATHER_SECONDS
        while len(self._waiting) < self._max_items and time.monotonic() < deadline:
            before = len(self._waiting)
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
                if len(self._waiting) != before:
                    break
            else:
                return

    async def _flush_all(self) -> None:
        try:
            while self._waiting:
                await self._gather()
                group = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                self.group_sizes = [*self.group_sizes[-99:], len(group)]
                try:
                    results = await self._on_thread([event for event, _ in group])
                except Exception as error:  # handed to every request of the group
                    for _, future in group:
                        if _waited_for(future):
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(group, results, strict=True):
                    if _waited_for(future):
                        future.set_result(result)
                self._on_queued()
        finally:
            self._flush = None

    async def _on_thread(self, events: list[Event]) -> list[Result]:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="parrain-queue")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._queue, events)

    def _queue(self, events: list[Event]) -> list[Result]:
        sealed = queue.seal_events(events=events, keys=self._keys)
        return self._database.run_statements(
            lambda session: queue.queue_events(session=session, events=sealed, clock=self._clock)
        )


def _waited_for(future: asyncio.Future[Result]) -> bool:
    """Whether a request still waits for ``future`` (not cancelled meanwhile, its loop not
    closed)."""
    return not future.done() and not future.get_loop().is_closed()
