"""Pydantic shapes of campaigns. Amounts are integers of minor units (pence, cents)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from parrain.kit.money import MAX_MINOR_UNITS, Money
from parrain.kit.regions import Currency, Language, Market


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"


MinorUnits = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR_UNITS)]
AttributionModelName = Literal["first_click", "last_click"]
QualifyingAction = Literal["signup", "first_order"]
LandingUrl = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=r"^https?://[^\s?#]+(\?[^\s#]*)?$",
        description=(
            "Where a sponsorship link sends people (app store or landing page); the deferred "
            "deep-link token is added as the parrain_token query parameter."
        ),
    ),
]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    friends_needed: int | None = Field(default=None, ge=1, le=100)
    enrolment_window_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    reward_cash_minor: MinorUnits | None = None
    reward_coupon_minor: MinorUnits | None = None
    friend_welcome_minor: MinorUnits | None = None
    holding_days: int | None = Field(default=None, ge=0, le=365)
    coupon_min_spend_minor: MinorUnits | None = None
    coupon_valid_days: int | None = Field(default=None, ge=1, le=730)
    attribution_model: AttributionModelName | None = None
    attribution_window_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    new_customer_days: int | None = Field(default=None, ge=0, le=3650)
    qualifying_action: QualifyingAction | None = None
    min_order_minor: MinorUnits | None = None
    landing_url: LandingUrl | None = None


class CampaignCreate(_Rules):
    """A new draft campaign."""

    name: str = Field(min_length=1, max_length=120)
    market: Market
    currency: Currency
    languages: list[Language] = Field(min_length=1, max_length=10)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    friends_needed: int = Field(ge=1, le=100)
    enrolment_window_hours: int = Field(default=24, ge=1, le=24 * 30)
    reward_cash_minor: MinorUnits
    reward_coupon_minor: MinorUnits
    friend_welcome_minor: MinorUnits = 0
    holding_days: int = Field(default=7, ge=0, le=365)
    coupon_min_spend_minor: MinorUnits = Field(
        default=0, description="The least an order must be worth for a prize coupon to apply."
    )
    coupon_valid_days: int = Field(
        default=90,
        ge=1,
        le=730,
        description="How long a prize coupon can be used once issued; then its value returns "
        "to the budget.",
    )
    attribution_model: AttributionModelName = Field(
        default="last_click", description="Which click earns a friend: the first or the last."
    )
    attribution_window_hours: int = Field(
        default=7 * 24, ge=1, le=24 * 90, description="How long a click can earn an install."
    )
    new_customer_days: int = Field(
        default=365,
        ge=0,
        le=3650,
        description=(
            "A friend is new when their marketplace user id, device and email were not seen "
            "in the market within this many days before they signed up."
        ),
    )
    qualifying_action: QualifyingAction = Field(
        default="signup", description="What makes a friend count: signing up, or a first order."
    )
    min_order_minor: MinorUnits = Field(
        default=0, description="The least a first order must be worth (first_order only)."
    )
    landing_url: LandingUrl | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.starts_at >= self.ends_at:
            raise ValueError("the campaign must end after it starts")
        if self.reward_cash_minor + self.reward_coupon_minor == 0:
            raise ValueError("the reward must be greater than zero")
        if self.reward_cash_minor + self.reward_coupon_minor > MAX_MINOR_UNITS:
            raise ValueError("the reward exceeds 2^63-1 minor units")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("a language is listed twice")
        return self


class CampaignUpdate(_Rules):
    """Changes to a draft; fields left out keep their value."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    languages: list[Language] | None = Field(default=None, min_length=1, max_length=10)


class FundingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: int = Field(strict=True, gt=0, le=MAX_MINOR_UNITS)
    currency: Currency
    funding_id: UUID | None = Field(
        default=None,
        description="Idempotency key: the same id funds once, however often it is sent.",
    )


class BudgetRead(BaseModel):
    currency: str
    funded_minor: int
    held_minor: int
    spent_minor: int
    available_minor: int
    available_display: str

    @classmethod
    def of(cls, *, currency: str, funded: int, held: int, spent: int, locale: str) -> BudgetRead:
        available = funded - held - spent
        return cls(
            currency=currency,
            funded_minor=funded,
            held_minor=held,
            spent_minor=spent,
            available_minor=available,
            available_display=Money(available, currency).format(locale),
        )


class CampaignAccounts(BaseModel):
    """The campaign's ledger accounts."""

    budget: UUID
    cash_payable: UUID
    coupon_liability: UUID


class CampaignRead(BaseModel):
    id: UUID
    name: str
    market: str
    currency: str
    languages: list[str]
    status: CampaignStatus
    starts_at: datetime
    ends_at: datetime
    friends_needed: int
    enrolment_window_hours: int
    reward_minor: int
    reward_cash_minor: int
    reward_coupon_minor: int
    reward_display: str
    friend_welcome_minor: int
    holding_days: int
    coupon_min_spend_minor: int
    coupon_valid_days: int
    attribution_model: str
    attribution_window_hours: int
    new_customer_days: int
    qualifying_action: str
    min_order_minor: int
    landing_url: str | None
    budget: BudgetRead
    accounts: CampaignAccounts
    locale: str = Field(description="The locale its amounts are shown in: en_GB, fr_FR...")
    created_at: datetime
    launched_at: datetime | None
    ended_at: datetime | None


class GateFindingRead(BaseModel):
    check: str
    message: str
