"""Campaigns: drafts, funding through the ledger, the lifecycle and its launch gate."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import gate
from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import (
    CampaignEnded,
    CampaignNameTaken,
    CampaignNotAcceptingCredit,
    CampaignNotEditable,
    CampaignNotFound,
    IllegalTransition,
    InsufficientBudget,
    InvalidCampaign,
    LaunchGateFailed,
)
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignStatus,
    CampaignUpdate,
    FundingCreate,
)
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import Clock, FrozenClock
from parrain.ledger import service as ledger
from parrain.ledger.errors import TransferExistsWithDifferentField

ACTOR = "operator:test"
CONTROLLER = "Example Marketplace Ltd"


def uk_campaign(clock: FrozenClock, **overrides: object) -> CampaignCreate:
    fields: dict[str, object] = {
        "name": "Cash Rewards UK",
        "market": "GB",
        "currency": "GBP",
        "languages": ["en"],
        "starts_at": clock.now(),
        "ends_at": clock.now() + timedelta(days=30),
        "friends_needed": 5,
        "enrolment_window_hours": 24,
        "reward_cash_minor": 2000,
        "reward_coupon_minor": 3000,
        "holding_days": 7,
    }
    fields.update(overrides)
    return CampaignCreate.model_validate(fields)


def create(database: Database, clock: FrozenClock, **overrides: object) -> CampaignRead:
    """A draft with the programme's data-use declaration (the consent launch check's part)."""

    def work(s: Session) -> CampaignRead:
        created = campaigns.create(
            session=s, campaign_in=uk_campaign(clock, **overrides), actor=ACTOR, clock=clock
        )
        consent.declare_programme_defaults(
            session=s, campaign_id=created.id, controller=CONTROLLER, actor=ACTOR, clock=clock
        )
        return created

    return database.run(work)


def fund(
    database: Database,
    clock: Clock,
    campaign_id: uuid.UUID,
    minor: int,
    currency: str = "GBP",
    funding_id: uuid.UUID | None = None,
) -> CampaignRead:
    return database.run(
        lambda s: campaigns.fund(
            session=s,
            campaign_id=campaign_id,
            funding_in=FundingCreate(amount_minor=minor, currency=currency, funding_id=funding_id),
            actor=ACTOR,
            clock=clock,
        )
    )


def act(database: Database, clock: Clock, action: str, campaign_id: uuid.UUID) -> CampaignRead:
    operation = getattr(campaigns, action)
    return database.run(  # type: ignore[no-any-return]
        lambda s: operation(session=s, campaign_id=campaign_id, actor=ACTOR, clock=clock)
    )


def status(database: Database, campaign_id: uuid.UUID) -> CampaignStatus:
    return database.read(lambda s: campaigns.get(session=s, campaign_id=campaign_id)).status


def audit_actions(database: Database) -> list[str]:
    return [e.action for e in database.read(lambda s: audit.list_entries(session=s, limit=500))]


def test_a_draft_owns_three_empty_accounts_in_its_currency(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)
    assert created.status is CampaignStatus.DRAFT
    assert created.reward_minor == 5000
    assert created.reward_display == "£50.00"
    assert created.budget.available_minor == 0
    accounts = database.read(lambda s: ledger.list_accounts(session=s, currency="GBP"))
    kinds = sorted(account.kind for account, _ in accounts)
    assert kinds == ["campaign_budget", "campaign_cash_payable", "campaign_coupon_liability"]
    budget = next(a for a, _ in accounts if a.kind == "campaign_budget")
    assert budget.debits_must_not_exceed_credits


def test_the_full_lifecycle_is_audited(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    with pytest.raises(LaunchGateFailed) as refused:
        act(database, clock, "launch", created.id)
    assert refused.value.details["findings"][0]["check"] == "budget_funded"
    assert "£0.00, less than one prize (£50.00)" in refused.value.message
    assert status(database, created.id) is CampaignStatus.DRAFT

    funded = fund(database, clock, created.id, 500_000)
    assert funded.budget.funded_minor == 500_000
    assert funded.budget.available_display == "£5,000.00"
    assert act(database, clock, "launch", created.id).status is CampaignStatus.LIVE
    assert act(database, clock, "pause", created.id).status is CampaignStatus.PAUSED
    assert act(database, clock, "resume", created.id).status is CampaignStatus.LIVE
    ended = act(database, clock, "end", created.id)
    assert ended.status is CampaignStatus.ENDED
    assert ended.ended_at == clock.now()
    assert audit_actions(database) == [
        "campaign.created",
        "consent.declared",
        "ledger.account_opened",
        "campaign.funded",
        "campaign.launched",
        "campaign.paused",
        "campaign.resumed",
        "campaign.ended",
    ]
    assert database.read(lambda s: audit.verify_chain(session=s)).intact


@pytest.mark.parametrize(
    ("path", "action", "status_before"),
    [
        ([], "pause", "draft"),
        ([], "resume", "draft"),
        ([], "end", "draft"),
        (["launch"], "launch", "live"),
        (["launch"], "resume", "live"),
        (["launch", "pause"], "pause", "paused"),
        (["launch", "end"], "resume", "ended"),
        (["launch", "end"], "launch", "ended"),
        (["launch", "end"], "end", "ended"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    database: Database, clock: FrozenClock, path: list[str], action: str, status_before: str
) -> None:
    created = create(database, clock)
    fund(database, clock, created.id, 10_000)
    for step in path:
        act(database, clock, step, created.id)
    entries_before = audit_actions(database)
    with pytest.raises(IllegalTransition) as refused:
        act(database, clock, action, created.id)
    assert refused.value.code == "illegal_transition"
    assert refused.value.status_code == 409
    assert refused.value.details["status"] == status_before
    assert status(database, created.id).value == status_before
    assert audit_actions(database) == entries_before


def test_resume_runs_the_gate_again(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock, ends_at=clock.now() + timedelta(days=2))
    fund(database, clock, created.id, 5_000)
    act(database, clock, "launch", created.id)
    act(database, clock, "pause", created.id)
    clock.advance(timedelta(days=3))
    with pytest.raises(LaunchGateFailed) as refused:
        act(database, clock, "resume", created.id)
    assert [f["check"] for f in refused.value.details["findings"]] == ["window_open"]
    assert status(database, created.id) is CampaignStatus.PAUSED


def test_the_gate_needs_one_whole_prize_including_friend_welcomes(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock, friend_welcome_minor=500)  # 5000 + 5 x 500 = 7500
    fund(database, clock, created.id, 7_499)
    with pytest.raises(LaunchGateFailed):
        act(database, clock, "launch", created.id)
    fund(database, clock, created.id, 1)
    assert act(database, clock, "launch", created.id).status is CampaignStatus.LIVE


def test_other_domains_register_launch_checks(database: Database, clock: FrozenClock) -> None:
    def no_french_without_terms(
        _s: Session, campaign: Campaign, _c: Clock
    ) -> list[gate.GateFinding]:
        if campaign.market == "FR":
            return [gate.GateFinding("terms", "the terms have a critical finding")]
        return []

    gate.register_launch_check("test_terms", no_french_without_terms)
    try:
        created = create(database, clock, market="FR", currency="EUR", languages=["fr"])
        fund(database, clock, created.id, 10_000, currency="EUR")
        with pytest.raises(LaunchGateFailed) as refused:
            act(database, clock, "launch", created.id)
        assert refused.value.details["findings"] == [
            {"check": "terms", "message": "the terms have a critical finding"}
        ]
    finally:
        gate._checks.pop("test_terms")
    assert "test_terms" not in gate.registered_checks()


def test_funding_is_idempotent_by_its_id(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    funding_id = uuid.uuid4()
    fund(database, clock, created.id, 10_000, funding_id=funding_id)
    again = fund(database, clock, created.id, 10_000, funding_id=funding_id)
    assert again.budget.funded_minor == 10_000
    assert audit_actions(database).count("campaign.funded") == 1
    with pytest.raises(TransferExistsWithDifferentField) as reused:
        fund(database, clock, created.id, 20_000, funding_id=funding_id)
    assert reused.value.code == "transfer_exists_with_different_field"
    assert reused.value.details["field"] == "amount"


def test_funding_in_another_currency_writes_nothing(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    with pytest.raises(InvalidCampaign) as refused:
        fund(database, clock, created.id, 10_000, currency="EUR")
    assert refused.value.details["campaign_currency"] == "GBP"
    after = database.read(lambda s: campaigns.get(session=s, campaign_id=created.id))
    assert after.budget.funded_minor == 0
    assert (
        database.read(lambda s: ledger.find_account(session=s, reference="operator-funding:EUR"))
        is None
    )
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def test_an_ended_campaign_cannot_be_funded(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    fund(database, clock, created.id, 5_000)
    act(database, clock, "launch", created.id)
    act(database, clock, "end", created.id)
    with pytest.raises(CampaignEnded):
        fund(database, clock, created.id, 5_000)


def test_only_drafts_can_change(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    changed = database.run(
        lambda s: campaigns.update(
            session=s,
            campaign_id=created.id,
            campaign_in=CampaignUpdate(reward_cash_minor=2500, friends_needed=3),
            actor=ACTOR,
            clock=clock,
        )
    )
    assert (changed.reward_minor, changed.friends_needed) == (5500, 3)
    entry = database.read(lambda s: audit.list_entries(session=s))[-1]
    assert entry.action == "campaign.updated"
    assert json.loads(entry.details) == {"fields": ["friends_needed", "reward_cash_minor"]}

    with pytest.raises(InvalidCampaign):
        database.run(
            lambda s: campaigns.update(
                session=s,
                campaign_id=created.id,
                campaign_in=CampaignUpdate(ends_at=created.starts_at - timedelta(days=1)),
                actor=ACTOR,
                clock=clock,
            )
        )
    fund(database, clock, created.id, 10_000)
    act(database, clock, "launch", created.id)
    with pytest.raises(CampaignNotEditable):
        database.run(
            lambda s: campaigns.update(
                session=s,
                campaign_id=created.id,
                campaign_in=CampaignUpdate(friends_needed=1),
                actor=ACTOR,
                clock=clock,
            )
        )
    assert (
        database.read(lambda s: campaigns.get(session=s, campaign_id=created.id)).friends_needed
        == 3
    )


def test_names_are_unique(database: Database, clock: FrozenClock) -> None:
    create(database, clock)
    with pytest.raises(CampaignNameTaken):
        create(database, clock)


def test_unknown_campaigns_are_not_found(database: Database, clock: FrozenClock) -> None:
    with pytest.raises(CampaignNotFound) as missing:
        act(database, clock, "launch", uuid.uuid4())
    assert missing.value.status_code == 404


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"currency": "XXQ"}, "ISO 4217"),
        ({"market": "ZZ"}, "ISO 3166"),
        ({"languages": ["xx"]}, "ISO 639-1"),
        ({"reward_cash_minor": -1}, "greater than or equal to 0"),
        ({"reward_cash_minor": 0, "reward_coupon_minor": 0}, "greater than zero"),
        ({"reward_cash_minor": 2**63}, "less than or equal to"),
        ({"reward_cash_minor": 20.5}, "valid integer"),
        ({"reward_cash_minor": "2000"}, "valid integer"),
        ({"friends_needed": 0}, "greater than or equal to 1"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_drafts_are_refused_before_anything_is_written(
    clock: FrozenClock, overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        uk_campaign(clock, **overrides)


def test_a_window_that_ends_before_it_starts_is_refused(clock: FrozenClock) -> None:
    with pytest.raises(ValidationError, match="must end after it starts"):
        uk_campaign(clock, ends_at=clock.now() - timedelta(days=1))


def test_pausing_stops_new_credit_but_honours_what_was_earned(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)
    fund(database, clock, created.id, 20_000)
    act(database, clock, "launch", created.id)
    earned, refunded = uuid.uuid4(), uuid.uuid4()
    for reward in (earned, refunded):
        database.run(
            lambda s, r=reward: campaigns.hold_reward(
                session=s, campaign_id=created.id, reward_id=r, clock=clock
            )
        )
    act(database, clock, "pause", created.id)
    with pytest.raises(CampaignNotAcceptingCredit) as refused:
        database.run(
            lambda s: campaigns.hold_reward(
                session=s, campaign_id=created.id, reward_id=uuid.uuid4(), clock=clock
            )
        )
    assert refused.value.code == "campaign_not_live"
    posted = database.run(
        lambda s: campaigns.release_reward(
            session=s, campaign_id=created.id, reward_id=earned, clock=clock
        )
    )
    assert sorted(t.amount for t in posted) == [2000, 3000]
    database.run(
        lambda s: campaigns.void_reward(
            session=s, campaign_id=created.id, reward_id=refunded, clock=clock
        )
    )
    budget = database.read(lambda s: campaigns.get(session=s, campaign_id=created.id)).budget
    assert (budget.funded_minor, budget.held_minor, budget.spent_minor) == (20_000, 0, 5_000)
    assert budget.available_minor == 15_000
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def test_a_reward_is_held_once_and_never_beyond_the_budget(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)
    fund(database, clock, created.id, 12_000)  # two rewards of 50.00, and 20.00 over
    act(database, clock, "launch", created.id)
    first = uuid.uuid4()
    for _ in range(3):  # the same reward id holds once
        database.run(
            lambda s: campaigns.hold_reward(
                session=s, campaign_id=created.id, reward_id=first, clock=clock
            )
        )
    database.run(
        lambda s: campaigns.hold_reward(
            session=s, campaign_id=created.id, reward_id=uuid.uuid4(), clock=clock
        )
    )
    with pytest.raises(InsufficientBudget) as refused:
        database.run(
            lambda s: campaigns.hold_reward(
                session=s, campaign_id=created.id, reward_id=uuid.uuid4(), clock=clock
            )
        )
    assert refused.value.details["available_minor"] == 2_000
    budget = database.read(lambda s: campaigns.get(session=s, campaign_id=created.id)).budget
    assert (budget.held_minor, budget.available_minor) == (10_000, 2_000)


def test_french_campaigns_show_euros_the_french_way(database: Database, clock: FrozenClock) -> None:
    created = create(
        database, clock, name="Cash Rewards FR", market="FR", currency="EUR", languages=["fr", "en"]
    )
    funded = fund(database, clock, created.id, 500_000, currency="EUR")
    assert created.reward_display == "50,00\xa0€"
    assert funded.budget.available_display == "5\u202f000,00\xa0€"
