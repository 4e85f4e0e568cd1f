"""The batch engine's bulk loads on the driver's cursor give what the ORM would: a campaign
read into the session as the ORM loads it, friends found by user id, device or email in one
query, a stored outcome read back as it was answered."""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from parrain.referrals import events
from parrain.referrals.facts import Facts
from parrain.referrals.models import Friend
from parrain.referrals.schemas import EventOutcome
from parrain.referrals.service import device_hash
from tests.referrals.programme import KEYS, Programme


def test_a_campaign_read_for_a_batch_is_the_one_the_orm_loads(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    campaign_id = programme.campaign.id
    columns = [column.key for column in inspect(Campaign).column_attrs]
    expected = database.read(
        lambda s: {name: getattr(s.get(Campaign, campaign_id), name) for name in columns}
    )

    def read(session: Session) -> tuple[dict[str, object], bool, bool]:
        facts = Facts(session)
        campaign = facts.campaign(campaign_id)
        state = inspect(campaign)
        clean = state.persistent and not session.dirty and not session.new
        values = {name: getattr(campaign, name) for name in columns}  # JSON loads on access
        # The campaigns service finds the same object in the session, without a query.
        return values, clean, session.get(Campaign, campaign_id) is campaign

    values, clean, shared = database.run(read)
    assert values == expected
    assert clean
    assert shared


def test_a_campaign_already_in_the_session_is_used_as_it_is(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)

    def read(session: Session) -> bool:
        loaded = session.scalars(select(Campaign)).one()
        return Facts(session).campaign(programme.campaign.id) is loaded

    assert database.run(read)


def test_friends_are_found_by_user_id_device_or_email_in_one_load(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    for name in ("f1", "f2", "f3"):
        programme.invite(enrolment, name)
    market = programme.region["market"]
    stored = set(database.read(lambda s: list(s.scalars(select(Friend.id)))))
    assert len(stored) == 3

    def load(session: Session) -> set[object]:
        facts = Facts(session)
        facts.ensure_friends(
            users=[(market, members.marketplace_user_hash(KEYS, "user-f1"))],
            devices=[(market, device_hash(KEYS, "device-f2"))],
            emails=[(market, members.email_hash(KEYS, "f3@example.org"))],
        )
        return set(facts.friends)

    assert database.run(load) == stored


def test_a_stored_outcome_reads_back_as_it_was_answered(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    outcomes = programme.invite(enrolment, "f1")
    event_ids = [outcome.event_id for outcome in outcomes]

    def read(session: Session) -> list[EventOutcome]:
        return [events.outcome_of(session=session, event_id=event_id) for event_id in event_ids]

    assert database.read(read) == outcomes
