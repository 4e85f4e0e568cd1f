"""A thread that drains the events received for later (ADR 28) in the process that receives
them, so the service needs no other process for them: ``parrain demo``, or an API worker
started with ``PARRAIN_REFERRALS_DRAIN_IN_API`` (the default).

The thread sleeps until :meth:`EventDrainer.wake` says events were queued (the API calls it
after each commit that queued some) or ``poll_seconds`` pass (events queued by another
process, a drain that another process left off), then drains until the queue is empty.
Each round is :func:`parrain.worker.jobs.drain_queued_events`; an error in a round is logged
and the thread goes on after the next wait, which doubles (up to a minute) while rounds keep
failing or stalling. :meth:`stop` finishes the round under way.
"""

from __future__ import annotations

import threading

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.members.service import MemberKeys
from parrain.worker.jobs import drain_queued_events

_log = get_logger(__name__)

#: Longest pause after rounds that failed, before the drainer tries again.
MAX_PAUSE_SECONDS = 60.0


class EventDrainer:
    def __init__(
        self,
        *,
        database: Database,
        keys: MemberKeys,
        clock: Clock,
        batch_size: int,
        poll_seconds: float,
    ) -> None:
        self._database = database
        self._keys = keys
        self._clock = clock
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Events applied by this thread so far (for tests and diagnostics).
        self.applied = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the drainer is already started")
        self._thread = threading.Thread(target=self._run, name="parrain-event-drainer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Events were queued: drain now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the round under way and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        pause = self._poll_seconds
        while not self._stop.is_set():
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                report = drain_queued_events(
                    database=self._database,
                    keys=self._keys,
                    clock=self._clock,
                    batch_size=self._batch_size,
                )
            except Exception as error:  # logged; the next round tries again
                _log.error("event_drainer_round_failed", error=type(error).__name__)
                pause = min(2 * pause, MAX_PAUSE_SECONDS)
                continue
            self.applied += report.applied
            # A stalled round (every event failing: wrong keys, say) is not tried again at
            # once: the pause doubles, up to a minute, and is back to the poll after a
            # round that went through.
            pause = min(2 * pause, MAX_PAUSE_SECONDS) if report.stalled else self._poll_seconds
