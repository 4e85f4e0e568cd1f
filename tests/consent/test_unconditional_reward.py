"""The reward never depends on giving away personal data: the same Cash Rewards scenario run
twice, once where the member and every friend refuse every optional use (and the member
withdraws a grant), once where they all grant everything, pays exactly the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from parrain.privacy import service as privacy
from tests.consent import consents
from tests.referrals.programme import KEYS, Programme, friend_names

CHANNELS = ("app", "social", "web")


def _member_id(programme: Programme, name: str) -> UUID:
    found = programme.database.read(
        lambda s: members.find_by_marketplace_user(
            session=s, market="GB", marketplace_user_id=f"user-{name}", keys=KEYS
        )
    )
    assert found is not None
    return found.id


def _answer(programme: Programme, member_id: UUID, *, yes: bool) -> None:
    database, clock, campaign_id = programme.database, programme.clock, programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    for channel in CHANNELS:
        if yes:
            consents.grant(database, clock, member_id, campaign_id, channel=channel)
        else:
            consents.refuse(database, clock, member_id, campaign_id, channel=channel)


def _scenario(database: Database, clock: FrozenClock, prefix: str, *, yes: bool) -> dict[str, Any]:
    programme = consents.launch(database, clock, friend_welcome_minor=500)
    enrolment = programme.enrol(f"{prefix}-ann")
    member_id = enrolment.member_id
    if yes:
        _answer(programme, member_id, yes=True)
    else:
        # A yes given, then taken back, then every other use refused.
        consents.show(database, clock, member_id, programme.campaign.id)
        consents.grant(database, clock, member_id, programme.campaign.id, channel="app")
        consents.withdraw(database, clock, member_id, programme.campaign.id, channel="app")
        for channel in ("social", "web"):
            consents.refuse(database, clock, member_id, programme.campaign.id, channel=channel)
    friends = friend_names(f"{prefix}-friend", 5)
    for friend in friends:
        programme.invite(enrolment, friend)
        _answer(programme, _member_id(programme, friend), yes=yes)
    held = programme.progress(enrolment)
    clock.advance(timedelta(days=8))
    programme.release_due()
    posted = programme.progress(enrolment)
    export = database.run(
        lambda s: privacy.export_member(
            session=s, member_id=member_id, keys=KEYS, actor="t", clock=clock
        )
    )
    [enrolled] = export.enrolments
    decision = database.read(
        lambda s: consent.check(session=s, check_in=consents.check_in(member_id), clock=clock)
    )
    assert held.reward is not None
    assert posted.reward is not None
    return {
        "decision": decision.decision,
        "counted": (held.friends_counted, posted.friends_counted),
        "reward": [
            (r.status, r.cash_minor, r.coupon_minor, r.currency)
            for r in (held.reward, posted.reward)
        ],
        "parts": [
            (
                part.kind,
                part.amount_minor,
                part.status,
                [(e.kind, e.phase, e.amount_minor, e.status) for e in part.ledger],
            )
            for prize in enrolled.prizes
            for part in sorted(prize.parts, key=lambda p: (p.kind, p.amount_minor))
        ],
        "balances": programme.balances(),
        "budget": programme.budget(),
        "discrepancies": programme.discrepancies(),
    }


def test_refusing_everything_pays_exactly_what_granting_everything_pays(
    database: Database, clock: FrozenClock
) -> None:
    refused = _scenario(database, clock, "no", yes=False)
    granted = _scenario(database, clock, "yes", yes=True)

    assert (refused.pop("decision"), granted.pop("decision")) == ("deny", "allow")
    assert refused == granted
    assert refused["reward"] == [("held", 2000, 3000, "GBP"), ("posted", 2000, 3000, "GBP")]
    assert refused["counted"] == (5, 5)
    assert len(refused["parts"]) == 7  # member's cash and coupons, five welcomes
    assert refused["budget"]["spent"] == 2000 + 3000 + 5 * 500
    assert refused["discrepancies"] == []
