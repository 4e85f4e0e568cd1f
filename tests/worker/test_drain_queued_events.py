"""Draining the events received for later (ADR 28) under concurrency and crashes: drains in
several threads at once, events queued by 4 processes (a fifth of them twice) while 2 others
drain, a drainer killed with its transaction open, and the drainer thread of the API.
Afterwards every event is applied exactly once: exact row counts, one reward per enrolment,
no ledger discrepancy, nothing left queued."""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.referrals import events, service
from parrain.referrals import queue as event_queue
from parrain.referrals.errors import EventIdReused
from parrain.referrals.handlers import Work
from parrain.referrals.models import Click, Friend, Install, ReferralEvent, Reward, RewardPart
from parrain.referrals.queue import QueueCounts, queue_counts, queue_events, seal_events
from parrain.referrals.schemas import EnrolmentRead, EventOutcome
from parrain.worker.drainer import EventDrainer
from parrain.worker.jobs import DrainRound, drain_queued_events
from tests.referrals.programme import EVENT, KEYS, Programme

FRIENDS_NEEDED = 2
CASH, COUPON, WELCOME = 700, 500, 150
PRIZE = CASH + COUPON + FRIENDS_NEEDED * WELCOME
DEADLINE_SECONDS = 300


def _launch(database: Database, clock: FrozenClock, members: int) -> Programme:
    return Programme.launch(
        database,
        clock,
        budget_minor=(members + 1) * PRIZE,  # every member's prize is covered
        friends_needed=FRIENDS_NEEDED,
        reward_cash_minor=CASH,
        reward_coupon_minor=COUPON,
        friend_welcome_minor=WELCOME,
    )


def _prepare(
    programme: Programme, members: int, friends_per_member: int
) -> tuple[list[EnrolmentRead], list[dict[str, Any]]]:
    """Enrol the members, click once per friend (one transaction), and write each friend's
    install (with the click's token) and signup bodies, a few minutes apart."""
    clock = programme.clock
    enrolments = [programme.enrol(f"member{m:02d}") for m in range(members)]
    friends = [(m, f"m{m:02d}f{f:03d}") for m in range(members) for f in range(friends_per_member)]

    def click_all(session: Session) -> list[str]:
        tokens = []
        for member, friend in friends:
            click = service.record_click(
                session=session,
                code_text=enrolments[member].code,
                device=f"device-{friend}",
                user_agent="Mozilla/5.0 (Android)",
                keys=KEYS,
                clock=clock,
            )
            assert click.token is not None
            tokens.append(click.token)
        return tokens

    tokens = programme.database.run(click_all)
    bodies: list[dict[str, Any]] = []
    for index, ((_member, friend), token) in enumerate(zip(friends, tokens, strict=True)):
        installed = clock.now() + timedelta(minutes=1 + index % 600)
        device = f"device-{friend}"
        bodies.append(
            programme.install(device, token=token, at=installed, event_id=f"install-{friend}")
        )
        bodies.append(
            programme.signup(
                friend, device, at=installed + timedelta(minutes=5), event_id=f"signup-{friend}"
            )
        )
    return enrolments, bodies


def _books(session: Session) -> dict[str, Any]:
    """The rows the events make, counted (as in ``tests/referrals/test_race.py``)."""

    def count(model: type, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    holds = session.execute(
        select(LedgerTransfer.id, LedgerTransfer.kind, LedgerTransfer.amount).where(
            LedgerTransfer.kind.like("reward_hold_%")
        )
    ).all()
    return {
        "events": count(ReferralEvent),
        "clicks": count(Click),
        "installs": count(Install),
        "installs_with_click": count(Install, Install.click_id.is_not(None)),
        "friend_statuses": dict(Counter(session.scalars(select(Friend.status)).all())),
        "friends_per_enrolment": Counter(session.scalars(select(Friend.enrolment_id)).all()),
        "rewards": [
            (r.enrolment_id, r.generation, r.status, r.reason)
            for r in session.scalars(select(Reward))
        ],
        "parts": [
            (p.id, p.kind, p.amount_minor, p.status) for p in session.scalars(select(RewardPart))
        ],
        "holds": {row.id: (row.kind, row.amount) for row in holds},
        "transfers": count(LedgerTransfer),
        "problems": ledger.find_discrepancies(session=session),
    }


def _queue(
    database: Database, clock: FrozenClock, bodies: Sequence[dict[str, Any]]
) -> list[EventOutcome | EventIdReused]:
    sealed = seal_events(events=[EVENT.validate_python(body) for body in bodies], keys=KEYS)
    return database.run(lambda s: queue_events(session=s, events=sealed, clock=clock))


def _counts(database: Database) -> QueueCounts:
    return database.read(lambda s: queue_counts(session=s))


def _outcomes(database: Database, ids: Sequence[str]) -> dict[str, EventOutcome]:
    def work(session: Session) -> dict[str, EventOutcome]:
        return {event_id: events.outcome_of(session=session, event_id=event_id) for event_id in ids}

    return database.read(work)


def _drain_until_empty(database: Database, clock: FrozenClock) -> int:
    """Drain until nothing waits (on PostgreSQL a drain whose lock is still held by a
    transaction being ended does nothing: try again, within a deadline)."""
    applied = 0
    deadline = time.monotonic() + 60
    while True:
        report = drain_queued_events(database=database, keys=KEYS, clock=clock, batch_size=200)
        applied += report.applied
        assert report.failed == report.parked == 0, report
        if report.waiting == 0:
            return applied
        assert time.monotonic() < deadline, f"events still waiting: {report}"
        time.sleep(0.05)


def _assert_books(
    programme: Programme,
    enrolments: Sequence[EnrolmentRead],
    friends_per_member: int,
) -> None:
    """Every friend installed, signed up, attributed and counted once; one held prize per
    member, each part one pending hold; the ledger balanced."""
    members = len(enrolments)
    friends = members * friends_per_member
    after = programme.database.read(_books)
    assert after["events"] == 2 * friends
    assert after["clicks"] == after["installs"] == after["installs_with_click"] == friends
    assert after["friend_statuses"] == {"qualified": friends}
    assert after["friends_per_enrolment"] == {e.id: friends_per_member for e in enrolments}
    rewards = after["rewards"]
    assert len(rewards) == len({r[0] for r in rewards}) == members
    assert Counter((r[1], r[2], r[3]) for r in rewards) == {(1, "held", None): members}
    parts = after["parts"]
    assert Counter(p[1] for p in parts) == {
        "cash": members,
        "coupon": members,
        "welcome": FRIENDS_NEEDED * members,
    }
    assert {p[0]: (f"reward_hold_{p[1]}", p[2]) for p in parts} == after["holds"]
    assert after["transfers"] == 1 + len(parts)
    assert programme.budget()["held"] == members * PRIZE
    assert after["problems"] == []
    funnel = programme.funnel()
    assert (funnel.installs, funnel.signups, funnel.qualified, funnel.rewarded) == (
        friends,
        friends,
        friends,
        members,
    )


def _assert_applied(database: Database, bodies: Sequence[dict[str, Any]]) -> None:
    outcomes = _outcomes(database, [body["id"] for body in bodies])
    assert Counter((o.type, o.status, o.reason) for o in outcomes.values()) == {
        ("install", "accepted", None): len(bodies) // 2,
        ("signup", "accepted", None): len(bodies) // 2,
    }
    assert _counts(database) == QueueCounts(waiting=0, parked=0)


# Threads


def test_four_threads_draining_at_once_apply_every_event_exactly_once(
    database: Database, clock: FrozenClock
) -> None:
    members, friends_per_member = 2, 150
    programme = _launch(database, clock, members)
    enrolments, bodies = _prepare(programme, members, friends_per_member)
    random.Random(20261130).shuffle(bodies)  # signups often before their installs
    for start in range(0, len(bodies), 100):
        _queue(database, clock, bodies[start : start + 100])
    assert _counts(database) == QueueCounts(waiting=600, parked=0)

    barrier = threading.Barrier(4)
    reports: list[DrainRound] = []
    errors: list[BaseException] = []

    def drainer() -> None:
        try:
            barrier.wait(timeout=30)
            reports.append(
                drain_queued_events(database=database, keys=KEYS, clock=clock, batch_size=40)
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=drainer, name=f"drain-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS)
        assert not thread.is_alive(), "a drain did not finish in time"
    assert errors == []
    assert len(reports) == 4
    assert all(report.failed == report.parked == 0 for report in reports), reports
    # On PostgreSQL a drain that finds another one running stops; the last one out may
    # still see events waiting that the running one then takes: drain what is left.
    applied = sum(report.applied for report in reports) + _drain_until_empty(database, clock)
    assert applied == len(bodies) == 600
    _assert_applied(database, bodies)
    _assert_books(programme, enrolments, friends_per_member)


# Processes: 4 queue while 2 drain

SENDERS = 4
DRAINERS = 2
RACE_MEMBERS = 8
RACE_FRIENDS_PER_MEMBER = 100  # 1,600 distinct events
RACE_DUPLICATES = 400


def _send(
    url: str,
    now: datetime,
    bodies: list[dict[str, Any]],
    start: Barrier,
    reports: Any,
    worker: int,
) -> None:
    """A child: seal and queue each body in its own transaction; report every answer."""
    database = None
    try:
        database = Database(DatabaseSettings(url=url))
        clock = FrozenClock(now)
        answers: list[tuple[str, dict[str, Any] | str]] = []
        start.wait(timeout=120)
        for body in bodies:
            [result] = _queue(database, clock, [body])
            answers.append(
                (
                    body["id"],
                    result.model_dump(mode="json")
                    if isinstance(result, EventOutcome)
                    else type(result).__name__,
                )
            )
        reports.put({"role": "sender", "worker": worker, "answers": answers, "crash": None})
    except BaseException:
        reports.put({"role": "sender", "worker": worker, "crash": traceback.format_exc()})
    finally:
        if database is not None:
            database.dispose()


def _drain_loop(url: str, now: datetime, stop: ProcessEvent, reports: Any, worker: int) -> None:
    """A child: drain round after round until told to stop; report what it applied."""
    database = None
    try:
        database = Database(DatabaseSettings(url=url))
        clock = FrozenClock(now)
        applied = failed = rounds = 0
        while not stop.is_set():
            report = drain_queued_events(database=database, keys=KEYS, clock=clock, batch_size=50)
            applied += report.applied
            failed += report.failed
            rounds += 1
            if report.applied == 0:
                time.sleep(0.005)  # nothing waiting: let the senders in
        reports.put(
            {
                "role": "drainer",
                "worker": worker,
                "applied": applied,
                "failed": failed,
                "rounds": rounds,
                "crash": None,
            }
        )
    except BaseException:
        reports.put({"role": "drainer", "worker": worker, "crash": traceback.format_exc()})
    finally:
        if database is not None:
            database.dispose()


def _stop_all(children: Sequence[Any]) -> None:
    for child in children:
        if child.is_alive():
            child.kill()
            child.join(timeout=30)


@pytest.mark.slow
def test_events_queued_by_4_processes_while_2_drain_are_each_applied_once(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    programme = _launch(database, clock, RACE_MEMBERS)
    enrolments, bodies = _prepare(programme, RACE_MEMBERS, RACE_FRIENDS_PER_MEMBER)
    shuffle = random.Random(20261130)
    duplicates = [dict(body) for body in shuffle.choices(bodies, k=RACE_DUPLICATES)]
    stream = bodies + duplicates
    shuffle.shuffle(stream)
    shares = [stream[worker::SENDERS] for worker in range(SENDERS)]
    assert sum(map(len, shares)) == 2_000

    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    start = context.Barrier(SENDERS)
    stop = context.Event()
    senders = [
        context.Process(
            target=_send,
            args=(database_url, clock.now(), shares[worker], start, reports, worker),
            name=f"queue-{worker}",
            daemon=True,
        )
        for worker in range(SENDERS)
    ]
    drainers = [
        context.Process(
            target=_drain_loop,
            args=(database_url, clock.now(), stop, reports, worker),
            name=f"drain-{worker}",
            daemon=True,
        )
        for worker in range(DRAINERS)
    ]
    children = senders + drainers
    collected: list[dict[str, Any]] = []
    try:
        for child in children:
            child.start()

        def collect(count: int) -> None:
            for _ in range(count):  # read before join: a child cannot exit with a full pipe
                try:
                    collected.append(reports.get(timeout=DEADLINE_SECONDS))
                except queue.Empty:
                    exits = {c.name: c.exitcode for c in children}
                    pytest.fail(f"a child neither reported nor finished in time: {exits}")
                crash = collected[-1]["crash"]
                assert crash is None, crash

        collect(SENDERS)  # a drainer reports only once stopped
        stop.set()
        collect(DRAINERS)
        for child in children:
            child.join(timeout=30)
            assert child.exitcode == 0, f"{child.name} exited with {child.exitcode}"
    finally:
        stop.set()
        _stop_all(children)

    applied_by_drainers = sum(r["applied"] for r in collected if r["role"] == "drainer")
    assert all(r["failed"] == 0 for r in collected if r["role"] == "drainer")
    assert applied_by_drainers > 0  # drains ran while events were being queued
    print(f"queue race on {database.dialect}: {applied_by_drainers} applied by the drainers")
    applied = applied_by_drainers + _drain_until_empty(database, clock)
    assert applied == len(bodies) == 1_600

    # Every delivery was answered with an outcome: queued, or the one it was applied with.
    final = _outcomes(database, [body["id"] for body in bodies])
    answers: dict[str, list[Any]] = {}
    for report in collected:
        for event_id, answer in report.get("answers", []):
            answers.setdefault(event_id, []).append(answer)
    assert sum(map(len, answers.values())) == 2_000
    assert set(answers) == set(final)
    for event_id, got in answers.items():
        applied_answer = final[event_id].model_dump(mode="json")
        queued_answer = {**applied_answer, "status": "queued", "friend_id": None}
        queued_answer["enrolment_id"] = None
        queued_answer["reason"] = None
        assert all(a in (queued_answer, applied_answer) for a in got), (event_id, got)
    _assert_applied(database, bodies)
    _assert_books(programme, enrolments, RACE_FRIENDS_PER_MEMBER)


# A drainer killed with its transaction open

CRASH_MEMBERS, CRASH_FRIENDS_PER_MEMBER = 2, 3


def _drain_then_hang(url: str, now: datetime, applied: ProcessEvent, reports: Any) -> None:
    """A child: drain with the real work done and its transaction still open, then say so
    and wait to be killed."""
    database = None
    try:
        database = Database(DatabaseSettings(url=url))
        clock = FrozenClock(now)
        real = events.apply_work

        def hang_after(
            session: Session, items: Sequence[Work], **kwargs: Any
        ) -> list[EventOutcome]:
            outcomes = real(session, items, **kwargs)
            session.flush()
            applied.set()
            time.sleep(120)  # killed long before
            return outcomes

        with pytest.MonkeyPatch.context() as patch:  # this child only
            patch.setattr(event_queue, "apply_work", hang_after)
            drain_queued_events(database=database, keys=KEYS, clock=clock, batch_size=500)
        reports.put({"crash": "the drain finished: it should have been killed"})
    except BaseException:
        reports.put({"crash": traceback.format_exc()})
    finally:
        if database is not None:
            database.dispose()


@pytest.mark.slow
def test_a_drainer_killed_with_its_transaction_open_leaves_every_event_queued_for_the_next(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    programme = _launch(database, clock, CRASH_MEMBERS)
    enrolments, bodies = _prepare(programme, CRASH_MEMBERS, CRASH_FRIENDS_PER_MEMBER)
    _queue(database, clock, bodies)
    before = database.read(_books)

    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    applied = context.Event()
    child = context.Process(
        target=_drain_then_hang,
        args=(database_url, clock.now(), applied, reports),
        name="drain-and-die",
        daemon=True,
    )
    try:
        child.start()
        if not applied.wait(timeout=120):
            try:
                crash = reports.get(timeout=1)["crash"]
            except queue.Empty:
                crash = f"exit code {child.exitcode}"
            pytest.fail(f"the child never applied the events: {crash}")
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)  # its transaction open, its facts written
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
    finally:
        _stop_all([child])

    # Nothing of the killed drain remains: every event still queued, no fact, no reward.
    assert database.read(_books) == before
    assert (before["installs"], before["friend_statuses"], before["rewards"]) == (0, {}, [])
    outcomes = _outcomes(database, [body["id"] for body in bodies])
    assert {o.status for o in outcomes.values()} == {"queued"}

    assert _drain_until_empty(database, clock) == len(bodies)
    _assert_applied(database, bodies)
    _assert_books(programme, enrolments, CRASH_FRIENDS_PER_MEMBER)


# The drainer thread


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _drainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "parrain-event-drainer"]


def test_the_drainer_thread_applies_queued_events_at_its_poll_or_at_once_when_woken(
    database: Database, clock: FrozenClock
) -> None:
    programme = _launch(database, clock, 1)
    enrolments, bodies = _prepare(programme, 1, 4)
    first, second = bodies[:4], bodies[4:]

    def applied(some: Sequence[dict[str, Any]]) -> bool:
        found = _outcomes(database, [body["id"] for body in some])
        return all(o.status == "accepted" for o in found.values())

    polling = EventDrainer(
        database=database, keys=KEYS, clock=clock, batch_size=10, poll_seconds=0.05
    )
    polling.start()
    try:
        with pytest.raises(RuntimeError):
            polling.start()
        sender = threading.Thread(target=_queue, args=(database, clock, first))
        sender.start()
        sender.join(timeout=30)
        assert _wait_for(lambda: applied(first)), "the poll did not drain the queued events"
        assert _wait_for(lambda: polling.applied == len(first))
    finally:
        polling.stop(timeout=10)
    assert _drainer_threads() == []

    # A drainer whose poll is far away drains at once when woken.
    woken = EventDrainer(database=database, keys=KEYS, clock=clock, batch_size=10, poll_seconds=60)
    woken.start()
    try:
        _queue(database, clock, second)
        assert not _wait_for(lambda: applied(second), seconds=0.3)  # not before the wake
        woken.wake()
        assert _wait_for(lambda: applied(second)), "the wake did not drain the queued events"
        # The count is added after the commit that made the outcomes visible.
        assert _wait_for(lambda: woken.applied == len(second))
    finally:
        began = time.monotonic()
        woken.stop(timeout=10)
    assert time.monotonic() - began < 5  # stop does not wait for the poll
    assert _drainer_threads() == []
    assert polling.applied == len(first)  # stopped: it applied nothing more
    _assert_applied(database, bodies)
    _assert_books(programme, enrolments, 4)
