"""Events received for later (ADR 28): queued, then applied by a drain exactly as the
synchronous path applies them. While queued an event's outcome reads ``queued`` and nothing
is counted; replays answer the outcome so far and another body is refused, before and after
the drain; a drain applies events whatever order they were queued in; an event that fails
is counted against, then left aside, without holding back the others; the sealed body at
rest shows no personal value and opens only with the right keys."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import MasterKey, MasterKeyring
from parrain.kit.errors import DecryptionFailed, UnknownKeyId
from parrain.members.service import MemberKeys
from parrain.referrals import events
from parrain.referrals import queue as event_queue
from parrain.referrals.errors import EventIdReused
from parrain.referrals.handlers import Work
from parrain.referrals.models import ReferralEvent
from parrain.referrals.queue import (
    MAX_ATTEMPTS,
    QueueCounts,
    open_event,
    queue_counts,
    queue_events,
    seal_events,
)
from parrain.referrals.schemas import EnrolmentRead, EventOutcome
from parrain.worker.jobs import DrainRound, drain_queued_events
from tests.referrals.programme import EVENT, KEYS, Programme, friend_names

Result = EventOutcome | EventIdReused


def queue(programme: Programme, bodies: Sequence[dict[str, Any]]) -> list[Result]:
    """Seal ``bodies`` (before the transaction, as the API does) and queue them in one."""
    sealed = seal_events(events=[EVENT.validate_python(body) for body in bodies], keys=KEYS)
    return programme.database.run(
        lambda s: queue_events(session=s, events=sealed, clock=programme.clock)
    )


def drain_all(programme: Programme, batch_size: int = 500) -> DrainRound:
    return drain_queued_events(
        database=programme.database, keys=KEYS, clock=programme.clock, batch_size=batch_size
    )


def outcome(programme: Programme, event_id: str) -> EventOutcome:
    return programme.database.read(lambda s: events.outcome_of(session=s, event_id=event_id))


def counts(programme: Programme) -> QueueCounts:
    return programme.database.read(lambda s: queue_counts(session=s))


def row(programme: Programme, event_id: str) -> ReferralEvent:
    found = programme.database.read(lambda s: s.get(ReferralEvent, event_id))
    assert found is not None
    return found


def invitations(
    programme: Programme, enrolment: EnrolmentRead, names: Sequence[str], *, browser: bool = False
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """For each friend: a click on the member's link (on the phone, or in a browser: then
    only the install's token links the click to the app), then the bodies of the app's
    install (with the click's token) and signup, not sent yet."""
    pairs = []
    for name in names:
        device = f"device-{name}"
        click = programme.click(enrolment.code, f"browser-{name}" if browser else device)
        assert click.token is not None
        pairs.append((programme.install(device, token=click.token), programme.signup(name, device)))
    return pairs


def shape(result: EventOutcome, enrolment: EnrolmentRead) -> tuple[Any, ...]:
    """An outcome with its ids made relative (own enrolment or not, friend or not)."""
    return (
        result.type,
        result.status,
        result.reason,
        result.friend_id is not None,
        result.enrolment_id == enrolment.id,
    )


# The UK programme through the queue


def test_the_uk_programme_queued_then_drained_gives_what_the_synchronous_path_gives(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, budget_minor=100_000)
    ann = programme.enrol("ann")  # through the queue
    bob = programme.enrol("bob")  # at once, for comparison
    queued_pairs = invitations(programme, ann, friend_names("a", 5))
    bodies = [body for pair in queued_pairs for body in pair]

    results = queue(programme, bodies)
    assert results == [
        EventOutcome(event_id=body["id"], type=body["type"], status="queued") for body in bodies
    ]
    # Queued: answered, stored, counted nowhere.
    assert [outcome(programme, body["id"]) for body in bodies] == results
    funnel = programme.funnel()
    assert (funnel.clicks, funnel.installs, funnel.signups, funnel.qualified) == (5, 0, 0, 0)
    assert programme.progress(ann).friends_counted == 0
    assert programme.progress(ann).reward is None
    assert programme.budget()["held"] == 0
    assert counts(programme) == QueueCounts(waiting=10, parked=0)

    synchronous = [
        programme.event(body)
        for pair in invitations(programme, bob, friend_names("b", 5))
        for body in pair
    ]
    assert counts(programme) == QueueCounts(waiting=10, parked=0)  # bob's were not queued

    assert drain_all(programme) == DrainRound(applied=10, failed=0, waiting=0, parked=0)

    drained = [outcome(programme, body["id"]) for body in bodies]
    assert [shape(o, ann) for o in drained] == [shape(o, bob) for o in synchronous]
    assert {o.status for o in drained} == {"accepted"}
    # A signup names its friend and the enrolment it counts for (an install before it, none).
    assert [o.enrolment_id for o in drained] == [None, ann.id] * 5
    for state in (programme.progress(ann), programme.progress(bob)):
        assert state.friends_counted == 5
        assert state.reward is not None
        assert state.reward.status == "held"
    assert programme.budget() == {
        "funded": 100_000,
        "held": 10_000,
        "spent": 0,
        "available": 90_000,
    }
    assert programme.balances()["cash"] == (0, 0, 2 * 2000, 0)
    assert programme.balances()["coupons"] == (0, 0, 2 * 3000, 0)
    funnel = programme.funnel()
    assert (
        funnel.clicks,
        funnel.installs,
        funnel.signups,
        funnel.qualified,
        funnel.rewarded,
    ) == (10, 10, 10, 10, 2)
    # Applied: the sealed bodies are gone.
    for body in bodies:
        stored = row(programme, body["id"])
        assert (stored.queued_key, stored.queued_body, stored.queued_attempts) == (None, None, 0)
    assert counts(programme) == QueueCounts(waiting=0, parked=0)
    assert drain_all(programme) == DrainRound(applied=0, failed=0, waiting=0, parked=0)
    assert programme.discrepancies() == []


# Idempotency


def test_a_queued_event_sent_again_answers_queued_then_its_outcome_and_applies_once(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    [(install, signup)] = invitations(programme, ann, ["f1"])
    moved = {**install, "at": (clock.now() + timedelta(seconds=1)).isoformat()}
    other = programme.signup("f2", "device-f2", event_id=signup["id"])

    assert queue(programme, [install, signup]) == [
        EventOutcome(event_id=install["id"], type="install", status="queued"),
        EventOutcome(event_id=signup["id"], type="signup", status="queued"),
    ]
    clock.advance(timedelta(minutes=1))
    again = queue(programme, [install, moved, signup, other])
    assert again[0] == EventOutcome(event_id=install["id"], type="install", status="queued")
    assert isinstance(again[1], EventIdReused)
    assert again[1].details["event_id"] == install["id"]
    assert again[2] == EventOutcome(event_id=signup["id"], type="signup", status="queued")
    assert isinstance(again[3], EventIdReused)
    # The synchronous path answers the same and applies nothing.
    assert programme.event(install).status == "queued"
    with pytest.raises(EventIdReused):
        programme.event(moved)
    assert programme.funnel().installs == 0
    assert row(programme, install["id"]).queued_body is not None
    assert counts(programme) == QueueCounts(waiting=2, parked=0)

    assert drain_all(programme).applied == 2
    applied = [outcome(programme, install["id"]), outcome(programme, signup["id"])]
    assert [o.status for o in applied] == ["accepted", "accepted"]
    assert applied[1].enrolment_id == ann.id

    after = queue(programme, [install, moved, signup, other])
    assert after[0] == applied[0]
    assert isinstance(after[1], EventIdReused)
    assert after[2] == applied[1]
    assert isinstance(after[3], EventIdReused)
    assert programme.event(install) == applied[0]
    assert programme.event(signup) == applied[1]
    with pytest.raises(EventIdReused):
        programme.event(other)
    assert drain_all(programme).applied == 0
    funnel = programme.funnel()
    assert (funnel.installs, funnel.signups, funnel.qualified) == (1, 1, 1)
    assert programme.progress(ann).friends_counted == 1
    # The first body is the one kept and applied.
    assert row(programme, install["id"]).body_hash == events.body_hash(
        EVENT.validate_python(install), KEYS
    )


def test_one_id_twice_in_one_call_is_queued_once_and_another_body_is_refused(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    install = programme.install("device-f1", code=programme.enrol("ann").code)
    moved = {**install, "device_id": "device-f9"}

    results = queue(programme, [install, install, moved])
    assert (
        results[0]
        == results[1]
        == EventOutcome(event_id=install["id"], type="install", status="queued")
    )
    assert isinstance(results[2], EventIdReused)
    assert counts(programme) == QueueCounts(waiting=1, parked=0)
    assert drain_all(programme).applied == 1
    assert programme.funnel().installs == 1


# Any interleaving of queue calls and drains

POOL = 6  # events of the pool: 3 friends' installs and signups
_examples = itertools.count()

_calls = st.lists(
    st.one_of(
        st.just(()),  # a drain
        st.lists(
            st.tuples(st.integers(0, POOL - 1), st.booleans()),  # (event, altered body)
            min_size=1,
            max_size=5,
        ),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(calls=_calls)
def test_any_interleaving_of_queue_calls_and_drains_keeps_each_ids_first_body_once(
    database: Database, clock: FrozenClock, calls: list[Any]
) -> None:
    programme = Programme.launch(database, clock)
    example = next(_examples)
    ann = programme.enrol(f"ann{example}")
    pool: list[dict[str, Any]] = []
    for name in friend_names(f"x{example}f", POOL // 2):
        device = f"device-{name}"
        pool.append(programme.install(device, code=ann.code, event_id=f"{example}-install-{name}"))
        pool.append(programme.signup(name, device, event_id=f"{example}-signup-{name}"))
    altered = [{**body, "at": (clock.now() - timedelta(minutes=3)).isoformat()} for body in pool]

    first: dict[int, bool] = {}  # the model: each id's first body (altered or not)
    drained: set[int] = set()
    for call in calls:
        if not call:
            drain_all(programme, batch_size=2)
            drained |= set(first)
            continue
        results = queue(programme, [altered[i] if alt else pool[i] for i, alt in call])
        assert len(results) == len(call)
        for (index, alt), result in zip(call, results, strict=True):
            event_id = pool[index]["id"]
            if index not in first:
                first[index] = alt
            if first[index] != alt:
                assert isinstance(result, EventIdReused), (event_id, result)
                assert result.details["event_id"] == event_id
                continue
            assert isinstance(result, EventOutcome), (event_id, result)
            assert result.event_id == event_id
            assert (result.status == "queued") == (index not in drained), (event_id, result)

    drain_all(programme, batch_size=2)
    ids = [body["id"] for body in pool]
    rows = programme.database.read(
        lambda s: list(s.scalars(select(ReferralEvent).where(ReferralEvent.id.in_(ids))))
    )
    assert sorted(r.id for r in rows) == sorted(pool[index]["id"] for index in first)
    for index, alt in first.items():
        stored = next(r for r in rows if r.id == pool[index]["id"])
        kept = altered[index] if alt else pool[index]
        assert stored.body_hash == events.body_hash(EVENT.validate_python(kept), KEYS)
        assert stored.queued_body is None
        assert stored.outcome["status"] in {"accepted", "ignored"}
    assert counts(programme) == QueueCounts(waiting=0, parked=0)


# Out of order


def test_signups_queued_before_their_installs_and_drained_apart_are_still_attributed(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    pairs = invitations(programme, ann, friend_names("f", 5), browser=True)

    queue(programme, [signup for _, signup in pairs])
    assert drain_all(programme, batch_size=2).applied == 5
    early = [outcome(programme, signup["id"]) for _, signup in pairs]
    assert {(o.status, o.enrolment_id) for o in early} == {("accepted", None)}
    assert programme.progress(ann).friends == []

    clock.advance(timedelta(minutes=10))
    queue(programme, [install for install, _ in pairs])
    assert programme.progress(ann).friends == []  # still queued
    assert drain_all(programme, batch_size=3).applied == 5
    late = [outcome(programme, install["id"]) for install, _ in pairs]
    assert {(o.status, o.enrolment_id) for o in late} == {("accepted", ann.id)}
    state = programme.progress(ann)
    assert state.friends_counted == 5
    assert state.reward is not None
    assert state.reward.status == "held"
    assert programme.budget()["held"] == 5000
    funnel = programme.funnel()
    assert (funnel.installs, funnel.signups, funnel.qualified, funnel.rewarded) == (5, 5, 5, 1)


# A failing event


def test_an_event_that_fails_is_left_aside_after_max_attempts_and_holds_back_no_other(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    pairs = invitations(programme, ann, friend_names("f", 5))
    bad_install, bad_signup = pairs[2]
    real = events.apply_work  # what the queue module applies with
    calls: list[list[str]] = []

    def failing(session: Session, items: Sequence[Work], **kwargs: Any) -> list[EventOutcome]:
        calls.append([item.event.id for item in items])
        if any(item.event.id == bad_signup["id"] for item in items):
            raise RuntimeError("this event cannot be applied")
        return real(session, items, **kwargs)

    monkeypatch.setattr(event_queue, "apply_work", failing)
    queue(programme, [body for pair in pairs for body in pair])

    with capture_logs() as logs:
        first = drain_all(programme, batch_size=4)
    assert first.applied == 9
    assert first.failed >= 1
    assert first.waiting + first.parked == 1
    assert first.failed == row(programme, bad_signup["id"]).queued_attempts
    rounds = 1
    while counts(programme).parked == 0:
        assert rounds < MAX_ATTEMPTS, "the failing event was never left aside"
        report = drain_all(programme, batch_size=4)
        assert report.applied == 0
        assert report.failed >= 1
        rounds += 1
    stored = row(programme, bad_signup["id"])
    assert stored.queued_attempts == MAX_ATTEMPTS
    assert stored.queued_body is not None  # kept for a person to look at
    assert outcome(programme, bad_signup["id"]).status == "queued"
    assert counts(programme) == QueueCounts(waiting=0, parked=1)

    # Left aside: later rounds do not touch it.
    calls.clear()
    assert drain_all(programme) == DrainRound(applied=0, failed=0, waiting=0, parked=1)
    assert calls == []
    assert row(programme, bad_signup["id"]).queued_attempts == MAX_ATTEMPTS

    # The others were applied: four friends counted, the fifth's install alone.
    assert programme.progress(ann).friends_counted == 4
    assert outcome(programme, bad_install["id"]).status == "accepted"
    funnel = programme.funnel()
    assert (funnel.installs, funnel.signups) == (5, 4)

    # The failure was logged by event id, with no personal value.
    failures = [entry for entry in logs if entry["event"] == "queued_event_failed"]
    assert failures
    assert {entry["event_id"] for entry in failures} == {bad_signup["id"]}
    text = repr(logs)
    for personal in ("f3@example.org", "user-f3", "device-f3"):
        assert personal not in text


def test_a_round_counts_one_failure_against_a_failing_event_and_keeps_it_waiting(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MAX_ATTEMPTS`` counts drains that failed on an event: a round that fails on it
    counts one failure and leaves it waiting for the next round, so a failure that lasts a
    moment (a lock wait, keys being rotated) does not leave it aside."""
    programme = Programme.launch(database, clock)
    install = programme.install("device-f1", code=programme.enrol("ann").code)
    real = events.apply_work  # what the queue module applies with

    def failing(session: Session, items: Sequence[Work], **kwargs: Any) -> list[EventOutcome]:
        if any(item.event.id == install["id"] for item in items):
            raise RuntimeError("this event cannot be applied")
        return real(session, items, **kwargs)

    monkeypatch.setattr(event_queue, "apply_work", failing)
    queue(programme, [install])
    for attempt in range(1, MAX_ATTEMPTS):
        assert drain_all(programme) == DrainRound(applied=0, failed=1, waiting=1, parked=0)
        assert row(programme, install["id"]).queued_attempts == attempt
    assert drain_all(programme) == DrainRound(applied=0, failed=1, waiting=0, parked=1)


def test_an_event_that_fails_once_is_applied_by_a_later_round(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that goes away (a lock wait, a restart) costs the event one attempt of
    :data:`MAX_ATTEMPTS`: it is drained again and applied, and counted once."""
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    [(install, signup)] = invitations(programme, ann, ["f1"])
    real = events.apply_work  # what the queue module applies with
    failures = iter([True])

    def flaky(session: Session, items: Sequence[Work], **kwargs: Any) -> list[EventOutcome]:
        if next(failures, False):
            raise RuntimeError("a transient failure")
        return real(session, items, **kwargs)

    monkeypatch.setattr(event_queue, "apply_work", flaky)
    queue(programme, [install, signup])
    report = drain_all(programme)
    assert report.applied == 2
    assert report.waiting == report.parked == 0
    assert [outcome(programme, body["id"]).status for body in (install, signup)] == [
        "accepted",
        "accepted",
    ]
    assert programme.progress(ann).friends_counted == 1


def test_a_batch_that_failed_while_another_drain_took_its_events_ends_the_round_cleanly(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch fails; before its events are looked up one by one, another process's drain
    has applied them: nothing is left to retry, nothing is counted, and the round ends."""
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    [(install, signup)] = invitations(programme, ann, ["f1"])
    real_apply, real_next = events.apply_work, event_queue.next_queued
    failing = iter([True])

    def fails_once(session: Session, items: Sequence[Work], **kwargs: Any) -> list[EventOutcome]:
        if next(failing, False):
            raise RuntimeError("this drain fails")
        return real_apply(session, items, **kwargs)

    def after_another_drain(*, session: Session, limit: int, skip: Any = ()) -> list[str]:
        # Meanwhile, another process drains everything (its own transactions).
        assert drain_queued_events(database=database, keys=KEYS, clock=clock).applied == 2
        return real_next(session=session, limit=limit, skip=skip)

    queue(programme, [install, signup])
    monkeypatch.setattr(event_queue, "apply_work", fails_once)
    monkeypatch.setattr(event_queue, "next_queued", after_another_drain)
    assert drain_all(programme) == DrainRound(applied=0, failed=0, waiting=0, parked=0)
    assert [outcome(programme, body["id"]).status for body in (install, signup)] == [
        "accepted",
        "accepted",
    ]


# At rest


def test_a_queued_body_holds_no_personal_value_in_clear_and_opens_only_with_its_keys(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    [(install, signup)] = invitations(programme, ann, ["zoe"])
    queue(programme, [install, signup])

    stored = row(programme, signup["id"])
    key, body = stored.queued_key, stored.queued_body
    assert key is not None
    assert body is not None
    raw = bytes(key) + bytes(body)
    for personal in ("zoe@example.org", "user-zoe", "device-zoe", "203.0.113.7"):
        assert personal.encode() not in raw
        assert personal.encode("utf-16-le") not in raw
    assert hashlib.sha256(b"zoe@example.org").hexdigest().encode() not in raw

    opened = open_event(event_id=signup["id"], key=bytes(key), body=bytes(body), keys=KEYS)
    assert opened == EVENT.validate_python(signup)
    # Another master key under the same key id, a keyring without that id, another event's id.
    other_secret = hashlib.sha256(b"another master key").digest()
    kid = KEYS.keyring.current_kid
    stranger = MemberKeys(
        keyring=MasterKeyring(keys=(MasterKey(kid, other_secret),), current_kid=kid),
        lookup=KEYS.lookup,
    )
    with pytest.raises(DecryptionFailed):
        open_event(event_id=signup["id"], key=bytes(key), body=bytes(body), keys=stranger)
    elsewhere = MemberKeys(
        keyring=MasterKeyring(
            keys=(MasterKey("elsewhere", other_secret),), current_kid="elsewhere"
        ),
        lookup=KEYS.lookup,
    )
    with pytest.raises(UnknownKeyId):
        open_event(event_id=signup["id"], key=bytes(key), body=bytes(body), keys=elsewhere)
    with pytest.raises(DecryptionFailed):
        open_event(event_id=install["id"], key=bytes(key), body=bytes(body), keys=KEYS)
    # A drain without the right keys applies nothing and keeps the sealed bodies; every
    # event failing is not the events' fault: nothing is counted against them, the round
    # says it stalled, and the right keys apply them all later.
    for _ in range(MAX_ATTEMPTS + 1):
        report = drain_queued_events(database=database, keys=stranger, clock=clock)
        assert report == DrainRound(applied=0, failed=0, waiting=2, parked=0, stalled=True)
    assert programme.funnel().signups == 0
    assert row(programme, signup["id"]).queued_body == body
    assert row(programme, signup["id"]).queued_attempts == 0
    assert drain_queued_events(database=database, keys=KEYS, clock=clock) == DrainRound(
        applied=2, failed=0, waiting=0, parked=0
    )
    assert programme.funnel().signups == 1
