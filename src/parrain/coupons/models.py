"""The coupons table: one row per prize part paid in coupons."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class Coupon(Base):
    """A coupon worth ``amount_minor`` of ``currency`` on an order of at least
    ``min_spend_minor``, usable once until ``expires_at``. ``order_id`` is the marketplace's
    order that redeemed it (the idempotency key of the redemption)."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(
            "status IN ('issued', 'redeemed', 'expired', 'cancelled')", name="status_known"
        ),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("min_spend_minor >= 0", name="min_spend_not_negative"),
        CheckConstraint(
            "(status = 'redeemed') = (order_id IS NOT NULL)", name="redeemed_has_order"
        ),
        Index("ix_coupons_status_expires", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    reward_part_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reward_parts.id"), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    min_spend_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[str | None] = mapped_column(String(100))
    order_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
