"""The retention sweep erases people once the declared programme durations have passed
since they were recorded, never while a campaign they take part in runs or while a prize is
still held for them."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.consent.service import PROGRAMME_DISPLAY_DAYS, PROGRAMME_PAYMENT_DAYS
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members.models import Member
from parrain.privacy import retention
from tests.referrals.programme import ACTOR, Programme, friend_names

DEFAULT_DAYS = 365
KEPT_DAYS = max(PROGRAMME_DISPLAY_DAYS, PROGRAMME_PAYMENT_DAYS)


def _sweep(database: Database, clock: FrozenClock, *, limit: int = 200) -> list[UUID]:
    erased: list[UUID] = []
    after: UUID | None = None
    while True:
        report = database.run(
            lambda s, start=after: retention.sweep(
                session=s, clock=clock, default_days=DEFAULT_DAYS, after=start, limit=limit
            )
        )
        erased += report.erased
        if report.last_id is None:
            return erased
        after = report.last_id


def _erased(database: Database) -> set[UUID]:
    rows = database.read(lambda s: s.query(Member).filter(Member.erased_at.is_not(None)).all())
    return {row.id for row in rows}


def _end(programme: Programme) -> None:
    programme.database.run(
        lambda s: campaigns.end(
            session=s, campaign_id=programme.campaign.id, actor=ACTOR, clock=programme.clock
        )
    )


def test_nobody_is_erased_while_the_campaign_runs_or_before_the_declared_time(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("friend", 2))  # no prize: 5 are needed
    clock.advance(timedelta(days=30))
    assert _sweep(database, clock) == []  # the campaign still runs
    _end(programme)
    clock.advance(timedelta(days=KEPT_DAYS - 31))  # a day before the declared time
    assert _sweep(database, clock) == []
    clock.advance(timedelta(days=2))
    erased = set(_sweep(database, clock, limit=2))  # in batches of two, by id
    assert enrolment.member_id in erased
    assert len(erased) == 3  # Ann and both friends (friends are members too)
    assert _erased(database) == erased
    entries = database.read(
        lambda s: audit.list_entries(session=s, subject=f"member:{enrolment.member_id}")
    )
    [entry] = [e for e in entries if e.action == "member.erased"]
    assert entry.actor == retention.SWEEP_ACTOR
    assert '"reason":"retention"' in entry.details
    assert _sweep(database, clock) == []  # nothing left to erase
    assert programme.discrepancies() == []


def test_a_held_prize_keeps_its_member_until_it_is_settled(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, holding_days=365)
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("friend", 5))
    _end(programme)
    clock.advance(timedelta(days=KEPT_DAYS + 1))
    erased = set(_sweep(database, clock))
    assert enrolment.member_id not in erased  # her prize is still held (not posted yet)
    assert len(erased) == 5  # her friends are done
    assert programme.release_due() == 1
    assert _sweep(database, clock) == [enrolment.member_id]
    assert programme.discrepancies() == []


def test_a_running_campaign_keeps_its_people_past_the_declared_time_until_it_closes(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, ends_at=clock.now() + timedelta(days=400))
    enrolment = programme.enrol("ann")
    clock.advance(timedelta(days=KEPT_DAYS + 1))
    assert _sweep(database, clock) == []  # still running: its window closes on day 400
    clock.advance(timedelta(days=400 - KEPT_DAYS))  # the window has closed
    assert _sweep(database, clock) == [enrolment.member_id]
