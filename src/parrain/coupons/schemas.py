"""Pydantic shapes of coupons and their redemption."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from parrain.kit.money import MAX_MINOR_UNITS
from parrain.kit.regions import Currency

CouponStatus = Literal["issued", "redeemed", "expired", "cancelled"]
OrderId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")]


class CouponRead(BaseModel):
    """A coupon as its owner and the checkout see it."""

    code: str = Field(description="As printed for people, in groups of four: 'K3M9-XQ2D-…'.")
    member_id: UUID
    campaign_id: UUID
    amount_minor: int
    currency: str
    min_spend_minor: int
    status: CouponStatus
    issued_at: datetime
    expires_at: datetime
    value_display: str = Field(description="The value as the member reads it: '£30.00'.")
    redeemed_order_id: str | None = None
    settled_at: datetime | None = None


class RedemptionCreate(BaseModel):
    """The checkout's request: the marketplace's order id (the idempotency key), the order's
    amount before the coupon, and its currency."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    order_amount_minor: int = Field(strict=True, ge=0, le=MAX_MINOR_UNITS)
    currency: Currency


class RedemptionRead(BaseModel):
    code: str
    order_id: str
    discount_minor: int = Field(
        description="What the order gets off: the coupon's value, "
        "never more than the order's amount."
    )
    currency: str
    redeemed_at: datetime
    replayed: bool = Field(
        description="True when this order had already redeemed it: the first answer, again."
    )
