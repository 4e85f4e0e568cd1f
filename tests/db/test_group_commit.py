"""Group commit: items submitted from many threads are applied together, each exactly once.

The items here are audit entries (a real table with a serialising head row): ``apply``
appends one entry per item and answers each entry's sequence number, so the chain shows
what was written, how many times, and that it is still intact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.group_commit import GroupCommit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock


class Recorder:
    """``apply`` for the tests: one audit entry per item; remembers each group's items."""

    def __init__(self, clock: FrozenClock, *, pause: float = 0.0) -> None:
        self.clock = clock
        self.pause = pause
        self.groups: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, session: Session, items: Sequence[str]) -> list[int]:
        keys = [item.split("#")[0] for item in items]
        if len(set(keys)) != len(keys):
            raise AssertionError(f"two items with one key in a group: {items}")
        if "poison" in items:
            raise ValueError("this item cannot be applied")
        with self._lock:
            self.groups.append(list(items))
        if self.pause:
            time.sleep(self.pause)  # while this group works, others queue up
        entries = audit.record_all(
            session=session,
            entries=[audit.NewEntry("test:group", "item.applied", f"item:{i}") for i in items],
            clock=self.clock,
        )
        return [entry.seq for entry in entries]


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a submitter never returned"
    assert not errors, errors


def _subjects(database: Database) -> list[str]:
    def read(session: Session) -> list[str]:
        return [entry.subject for entry in audit.list_entries(session=session, limit=10_000)]

    return database.read(read)


def test_a_lone_item_is_applied_at_once_in_its_own_group(
    database: Database, clock: FrozenClock
) -> None:
    recorder = Recorder(clock)
    committer = GroupCommit(database, recorder, key=lambda item: item)
    assert committer.submit("a") == 1
    assert committer.submit("b") == 2
    assert recorder.groups == [["a"], ["b"]]
    assert committer.group_sizes == [1, 1]


def test_concurrent_items_share_transactions_and_each_gets_its_own_result(
    database: Database, clock: FrozenClock
) -> None:
    recorder = Recorder(clock, pause=0.02)
    committer = GroupCommit(database, recorder, key=lambda item: item, max_items=50)
    threads, per_thread = 12, 8
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def work(index: int) -> None:
        for n in range(per_thread):
            item = f"t{index}-{n}"
            seq = committer.submit(item)
            with lock:
                answers[item] = seq

    _in_threads(threads, work)
    everything = threads * per_thread
    assert len(answers) == everything
    # Each item written exactly once, and each thread told its own item's entry.
    subjects = _subjects(database)
    assert sorted(subjects) == sorted(f"item:{item}" for item in answers)
    by_seq = {seq: item for item, seq in answers.items()}
    assert len(by_seq) == everything
    assert sum(len(group) for group in recorder.groups) == everything
    assert max(committer.group_sizes) > 1, "no two items ever shared a transaction"
    assert max(committer.group_sizes) <= 50
    assert database.read(lambda session: audit.verify_chain(session=session)).intact


def test_items_with_the_same_key_never_share_a_group(
    database: Database, clock: FrozenClock
) -> None:
    recorder = Recorder(clock, pause=0.01)
    committer = GroupCommit(database, recorder, key=lambda item: item.split("#")[0])

    def work(index: int) -> None:
        for n in range(5):
            committer.submit(f"k{n % 2}#{index}-{n}")  # only two keys between all threads

    _in_threads(8, work)  # the recorder raises if a group repeats a key
    assert sum(len(group) for group in recorder.groups) == 40
    assert len(_subjects(database)) == 40


def test_a_failing_item_fails_alone_and_the_rest_of_its_group_is_applied(
    database: Database, clock: FrozenClock
) -> None:
    recorder = Recorder(clock, pause=0.02)
    committer = GroupCommit(database, recorder, key=lambda item: item)
    failures: list[str] = []

    def work(index: int) -> None:
        for n in range(4):
            item = "poison" if (index, n) == (3, 1) else f"t{index}-{n}"
            try:
                committer.submit(item)
            except ValueError:
                failures.append(item)

    _in_threads(8, work)
    assert failures == ["poison"]
    subjects = _subjects(database)
    assert len(subjects) == 31
    assert len(set(subjects)) == 31
    assert "item:poison" not in subjects


def test_a_group_holds_at_least_one_item(database: Database, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="at least one item"):
        GroupCommit(database, Recorder(clock), key=lambda item: item, max_items=0)
