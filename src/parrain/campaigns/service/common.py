"""What the campaign operations share: account references, the display locale, loading
a campaign and reading it (with its budget) for the API."""

from __future__ import annotations

import functools
from uuid import UUID

from babel import Locale, UnknownLocaleError
from sqlalchemy.orm import Session

from parrain.campaigns import repository
from parrain.campaigns.errors import CampaignNotFound
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import (
    BudgetRead,
    CampaignAccounts,
    CampaignRead,
    CampaignStatus,
)
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account


def funding_account_reference(currency: str) -> str:
    return f"operator-funding:{currency}"


@functools.cache
def locale_for(market: str, languages: tuple[str, ...]) -> str:
    for language in languages:
        try:
            return str(Locale.parse(f"{language}_{market}"))
        except (UnknownLocaleError, ValueError):
            continue
    return "en_GB"


def display_locale(campaign: Campaign) -> str:
    """The locale amounts of this campaign are shown in: ``en_GB``, ``fr_FR``..."""
    return locale_for(campaign.market, tuple(campaign.languages))


def subject(campaign_id: UUID) -> str:
    return f"campaign:{campaign_id}"


def load(session: Session, campaign_id: UUID, *, for_update: bool = False) -> Campaign:
    campaign = repository.get(session, campaign_id, for_update=for_update)
    if campaign is None:
        raise CampaignNotFound(
            f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
        )
    return campaign


def budget_of(*, session: Session, campaign: Campaign) -> BudgetRead:
    account = ledger.get_account(session=session, account_id=campaign.budget_account_id)
    return budget_from(campaign, account)


def budget_from(campaign: Campaign, account: Account) -> BudgetRead:
    return BudgetRead.of(
        currency=campaign.currency,
        funded=account.credits_posted,
        held=account.debits_pending,
        spent=account.debits_posted,
        locale=display_locale(campaign),
    )


def to_read(*, session: Session, campaign: Campaign) -> CampaignRead:
    reward = campaign.reward_cash_minor + campaign.reward_coupon_minor
    return CampaignRead(
        id=campaign.id,
        name=campaign.name,
        market=campaign.market,
        currency=campaign.currency,
        languages=list(campaign.languages),
        status=CampaignStatus(campaign.status),
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        friends_needed=campaign.friends_needed,
        enrolment_window_hours=campaign.enrolment_window_hours,
        reward_minor=reward,
        reward_cash_minor=campaign.reward_cash_minor,
        reward_coupon_minor=campaign.reward_coupon_minor,
        reward_display=Money(reward, campaign.currency).format(display_locale(campaign)),
        friend_welcome_minor=campaign.friend_welcome_minor,
        holding_days=campaign.holding_days,
        coupon_min_spend_minor=campaign.coupon_min_spend_minor,
        coupon_valid_days=campaign.coupon_valid_days,
        attribution_model=campaign.attribution_model,
        attribution_window_hours=campaign.attribution_window_hours,
        new_customer_days=campaign.new_customer_days,
        qualifying_action=campaign.qualifying_action,
        min_order_minor=campaign.min_order_minor,
        landing_url=campaign.landing_url,
        budget=budget_of(session=session, campaign=campaign),
        accounts=CampaignAccounts(
            budget=campaign.budget_account_id,
            cash_payable=campaign.cash_payable_account_id,
            coupon_liability=campaign.coupon_liability_account_id,
        ),
        locale=display_locale(campaign),
        created_at=campaign.created_at,
        launched_at=campaign.launched_at,
        ended_at=campaign.ended_at,
    )
