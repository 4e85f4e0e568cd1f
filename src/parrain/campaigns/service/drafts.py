"""Drafts: create and update a campaign before it goes live; read and list campaigns."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import repository
from parrain.campaigns.errors import (
    CampaignNameTaken,
    CampaignNotEditable,
    InvalidCampaign,
)
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignStatus,
    CampaignUpdate,
)
from parrain.campaigns.service.common import (
    load,
    subject,
    to_read,
)
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.ledger import service as ledger
from parrain.ledger.schemas import AccountCreate


def create(
    *, session: Session, campaign_in: CampaignCreate, actor: str, clock: Clock
) -> CampaignRead:
    if repository.get_by_name(session, campaign_in.name) is not None:
        raise CampaignNameTaken(
            f"a campaign called {campaign_in.name!r} already exists", name=campaign_in.name
        )
    campaign_id = new_id()
    accounts = {
        kind: ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency=campaign_in.currency,
                kind=f"campaign_{kind}",
                reference=f"campaign:{campaign_id}:{kind}",
                debits_must_not_exceed_credits=kind == "budget",
            ),
            clock=clock,
        )
        for kind in ("budget", "cash_payable", "coupon_liability")
    }
    now = clock.now()
    campaign = Campaign(
        id=campaign_id,
        name=campaign_in.name,
        market=campaign_in.market,
        currency=campaign_in.currency,
        languages=list(campaign_in.languages),
        starts_at=campaign_in.starts_at,
        ends_at=campaign_in.ends_at,
        friends_needed=campaign_in.friends_needed,
        enrolment_window_hours=campaign_in.enrolment_window_hours,
        reward_cash_minor=campaign_in.reward_cash_minor,
        reward_coupon_minor=campaign_in.reward_coupon_minor,
        friend_welcome_minor=campaign_in.friend_welcome_minor,
        holding_days=campaign_in.holding_days,
        coupon_min_spend_minor=campaign_in.coupon_min_spend_minor,
        coupon_valid_days=campaign_in.coupon_valid_days,
        attribution_model=campaign_in.attribution_model,
        attribution_window_hours=campaign_in.attribution_window_hours,
        new_customer_days=campaign_in.new_customer_days,
        qualifying_action=campaign_in.qualifying_action,
        min_order_minor=campaign_in.min_order_minor,
        landing_url=campaign_in.landing_url,
        status=CampaignStatus.DRAFT.value,
        budget_account_id=accounts["budget"].id,
        cash_payable_account_id=accounts["cash_payable"].id,
        coupon_liability_account_id=accounts["coupon_liability"].id,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, campaign)
    audit.record(
        session=session,
        actor=actor,
        action="campaign.created",
        subject=subject(campaign_id),
        details={
            "name": campaign.name,
            "market": campaign.market,
            "currency": campaign.currency,
            "reward_cash_minor": campaign.reward_cash_minor,
            "reward_coupon_minor": campaign.reward_coupon_minor,
            "accounts": {kind: str(account.id) for kind, account in accounts.items()},
        },
        clock=clock,
    )
    return to_read(session=session, campaign=campaign)


def update(
    *,
    session: Session,
    campaign_id: UUID,
    campaign_in: CampaignUpdate,
    actor: str,
    clock: Clock,
) -> CampaignRead:
    """Change a draft. A live, paused or ended campaign's rules are fixed."""
    campaign = load(session, campaign_id, for_update=True)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignNotEditable(
            f"only a draft can be changed; this campaign is {campaign.status}",
            status=campaign.status,
        )
    changes = campaign_in.model_dump(exclude_unset=True)
    new_name = changes.get("name")
    if new_name not in (None, campaign.name) and repository.get_by_name(session, new_name):
        raise CampaignNameTaken(f"a campaign called {new_name!r} already exists", name=new_name)
    merged = {
        "starts_at": changes.get("starts_at", campaign.starts_at),
        "ends_at": changes.get("ends_at", campaign.ends_at),
        "cash": changes.get("reward_cash_minor", campaign.reward_cash_minor),
        "coupon": changes.get("reward_coupon_minor", campaign.reward_coupon_minor),
    }
    if merged["starts_at"] >= merged["ends_at"]:
        raise InvalidCampaign("the campaign must end after it starts", field="ends_at")
    if merged["cash"] + merged["coupon"] == 0:
        raise InvalidCampaign("the reward must be greater than zero", field="reward_cash_minor")
    for name, value in changes.items():
        if value is None and name != "landing_url":
            raise InvalidCampaign(f"{name} cannot be cleared", field=name)
        setattr(campaign, name, list(value) if name == "languages" else value)
    campaign.updated_at = clock.now()
    session.flush()
    if changes:
        audit.record(
            session=session,
            actor=actor,
            action="campaign.updated",
            subject=subject(campaign_id),
            details={"fields": sorted(changes)},
            clock=clock,
        )
    return to_read(session=session, campaign=campaign)


def get(*, session: Session, campaign_id: UUID) -> CampaignRead:
    return to_read(session=session, campaign=load(session, campaign_id))


def find_by_name(*, session: Session, name: str) -> CampaignRead | None:
    campaign = repository.get_by_name(session, name)
    return to_read(session=session, campaign=campaign) if campaign is not None else None


def list_campaigns(*, session: Session, status: CampaignStatus | None = None) -> list[CampaignRead]:
    campaigns = repository.list_campaigns(session, status=status.value if status else None)
    return [to_read(session=session, campaign=c) for c in campaigns]
