"""The referral tables: enrolments, clicks, installs, friends, orders, events and rewards.

Facts are stored as they arrive (a click, an install, a signup, an order, an event with its
outcome); what they mean (is the friend new, attributed, qualified in time; is the prize
held, posted or voided) is derived from the facts by the service and stored next to them,
so that processing the same facts in another order gives the same state.

Device ids, IP addresses, user agents, emails and marketplace user ids appear only as keyed
lookup hashes (64 hex); a friend's own personal data lives encrypted in ``members``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class Enrolment(Base):
    """A member taking part in a campaign, with their sponsorship code and deadline."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Click(Base):
    """A click on a sponsorship link; one row per link and device, however often it clicks."""

    __tablename__ = "referral_clicks"
    __table_args__ = (UniqueConstraint("enrolment_id", "device_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    enrolment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrolments.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    device_hash: Mapped[str] = mapped_column(String(64), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Install(Base):
    """An app install reported by the marketplace, with the token or code it carried."""

    __tablename__ = "referral_installs"
    __table_args__ = (Index("ix_referral_installs_market_device", "market", "device_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    market: Mapped[str] = mapped_column(String(2))
    device_hash: Mapped[str] = mapped_column(String(64))
    click_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referral_clicks.id"))
    code: Mapped[str | None] = mapped_column(String(32))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Friend(Base):
    """A marketplace user who signed up in a market, and what their signup earns whom.

    ``status`` is derived (see :mod:`parrain.referrals.progress`): ``pending`` (no link to a
    sponsor yet), ``not_new``, ``waiting`` (attributed, qualifying action not done yet),
    ``qualified``, ``late`` (qualified after the member's deadline), ``not_credited`` (the
    campaign was not live when they qualified), ``unqualified`` (first order too small),
    ``disqualified`` (refund, chargeback or closed account).
    """

    __tablename__ = "referral_friends"
    __table_args__ = (
        UniqueConstraint("market", "user_hash"),
        Index("ix_referral_friends_market_device", "market", "device_hash"),
        Index("ix_referral_friends_market_email", "market", "email_hash"),
        CheckConstraint(
            "status IN ('pending', 'not_new', 'waiting', 'qualified', 'late', 'not_credited', "
            "'unqualified', 'disqualified')",
            name="status_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), unique=True)
    market: Mapped[str] = mapped_column(String(2))
    user_hash: Mapped[str] = mapped_column(String(64))
    device_hash: Mapped[str] = mapped_column(String(64))
    email_hash: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    user_agent_hash: Mapped[str | None] = mapped_column(String(64))
    typed_code: Mapped[str | None] = mapped_column(String(32))
    signup_event_id: Mapped[str] = mapped_column(String(100))
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Derived state:
    new_customer: Mapped[bool] = mapped_column(Boolean)
    seen_before: Mapped[str | None] = mapped_column(String(16))
    install_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referral_installs.id"))
    enrolment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("enrolments.id"), index=True)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    attribution_reason: Mapped[str | None] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(40))
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sticky facts:
    not_credited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disqualified_reason: Mapped[str | None] = mapped_column(String(24))


class Order(Base):
    """An order as the marketplace reported it (the latest status wins), kept by the buyer's
    user hash whether or not the buyer has signed up yet: events may come in any order. A
    refund or chargeback that comes before its order makes a row with ``status`` ``unknown``
    that the order fills in."""

    __tablename__ = "referral_orders"
    __table_args__ = (
        UniqueConstraint("market", "order_ref"),
        Index("ix_referral_orders_market_user", "market", "user_hash"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("refunded_minor >= 0", name="refunded_not_negative"),
        CheckConstraint(
            "status IN ('placed', 'completed', 'cancelled', 'unknown')", name="status_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    market: Mapped[str] = mapped_column(String(2))
    order_ref: Mapped[str] = mapped_column(String(100))
    user_hash: Mapped[str | None] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    ordered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    fully_refunded: Mapped[bool] = mapped_column(Boolean)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    charged_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Closure(Base):
    """A marketplace account closed, kept whether or not its owner signed up as a friend."""

    __tablename__ = "referral_closures"
    __table_args__ = (UniqueConstraint("market", "user_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    market: Mapped[str] = mapped_column(String(2))
    user_hash: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Sighting(Base):
    """A marketplace user id, device or email seen in a market: what the new-customer test
    looks for. ``source`` names the fact that saw it (``enrolment:<id>``, ``friend:<id>``)."""

    __tablename__ = "referral_sightings"
    __table_args__ = (
        UniqueConstraint("source", "kind"),
        Index("ix_referral_sightings_lookup", "market", "kind", "value_hash", "seen_at"),
        CheckConstraint("kind IN ('user', 'device', 'email')", name="kind_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    market: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(8))
    value_hash: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(64))


#: The condition of the partial index of events still queued (ADR 28).
QUEUED = "queued_body IS NOT NULL"


class ReferralEvent(Base):
    """An event received from the marketplace: its id is the idempotency key, ``body_hash``
    (keyed) tells a replay from a different body, ``outcome`` is what was answered.

    An event received for later (``Prefer: respond-async``, ADR 28) keeps its body until a
    drain applies it: ``queued_body`` is its canonical JSON sealed (AES-GCM) under a data key
    of its own, ``queued_key`` that key wrapped by the master key; both are cleared when it is
    applied. ``queued_attempts`` counts the drains that failed on it."""

    __tablename__ = "referral_events"
    __table_args__ = (
        Index(
            "ix_referral_events_queued",
            "received_at",
            "id",
            sqlite_where=text(QUEUED),
            postgresql_where=text(QUEUED),
        ),
    )

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    body_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    queued_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    queued_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    queued_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Reward(Base):
    """A member's prize for an enrolment. A voided prize may be followed by another one
    (``generation`` + 1) if enough friends qualify again before the deadline."""

    __tablename__ = "rewards"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "generation"),
        Index("ix_rewards_status_release", "status", "release_at"),
        CheckConstraint(
            "status IN ('held', 'posted', 'voided', 'refused', 'clawed_back')",
            name="status_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    enrolment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrolments.id"))
    generation: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RewardPart(Base):
    """One transfer of a prize; its id is the pending hold's transfer id in the ledger.

    ``spent``: a posted coupon part that could not be clawed back because its coupon had
    already been used (or had expired back into the budget)."""

    __tablename__ = "reward_parts"
    __table_args__ = (
        CheckConstraint("kind IN ('cash', 'coupon', 'welcome')", name="kind_known"),
        CheckConstraint(
            "status IN ('held', 'posted', 'voided', 'clawed_back', 'spent')",
            name="status_known",
        ),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    friend_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("referral_friends.id"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
