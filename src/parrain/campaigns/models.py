"""The campaigns table. Amounts are minor units of the campaign's currency."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'live', 'paused', 'ended')", name="status_known"),
        CheckConstraint("starts_at < ends_at", name="window_ordered"),
        CheckConstraint("friends_needed >= 1", name="friends_needed_positive"),
        CheckConstraint("enrolment_window_hours >= 1", name="enrolment_window_positive"),
        CheckConstraint(
            "reward_cash_minor >= 0 AND reward_coupon_minor >= 0 "
            "AND reward_cash_minor + reward_coupon_minor > 0",
            name="reward_positive",
        ),
        CheckConstraint("friend_welcome_minor >= 0", name="welcome_not_negative"),
        CheckConstraint("holding_days >= 0", name="holding_not_negative"),
        CheckConstraint("coupon_min_spend_minor >= 0", name="coupon_min_spend_not_negative"),
        CheckConstraint("coupon_valid_days >= 1", name="coupon_valid_days_positive"),
        CheckConstraint(
            "attribution_model IN ('first_click', 'last_click')", name="attribution_model_known"
        ),
        CheckConstraint("attribution_window_hours >= 1", name="attribution_window_positive"),
        CheckConstraint("new_customer_days >= 0", name="new_customer_days_not_negative"),
        CheckConstraint(
            "qualifying_action IN ('signup', 'first_order')", name="qualifying_action_known"
        ),
        CheckConstraint("min_order_minor >= 0", name="min_order_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    market: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    languages: Mapped[list[str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    friends_needed: Mapped[int] = mapped_column(Integer)
    enrolment_window_hours: Mapped[int] = mapped_column(Integer)
    reward_cash_minor: Mapped[int] = mapped_column(BigInteger)
    reward_coupon_minor: Mapped[int] = mapped_column(BigInteger)
    friend_welcome_minor: Mapped[int] = mapped_column(BigInteger)
    holding_days: Mapped[int] = mapped_column(Integer)
    coupon_min_spend_minor: Mapped[int] = mapped_column(BigInteger)
    coupon_valid_days: Mapped[int] = mapped_column(Integer)
    attribution_model: Mapped[str] = mapped_column(String(16))
    attribution_window_hours: Mapped[int] = mapped_column(Integer)
    new_customer_days: Mapped[int] = mapped_column(Integer)
    qualifying_action: Mapped[str] = mapped_column(String(16))
    min_order_minor: Mapped[int] = mapped_column(BigInteger)
    landing_url: Mapped[str | None] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), index=True)
    budget_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    cash_payable_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    coupon_liability_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
