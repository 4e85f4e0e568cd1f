"""Payout tables: our batches, their items, and the reward parts each item pays.

A batch is sent to PayPal once under ``sender_batch_id`` (derived from its id); an item is
one member's cash in one currency; its parts are the posted ``cash`` reward parts it pays,
each held in the payout clearing account by its own pending transfer. ``open_part_id``
repeats ``reward_part_id`` while the item may still pay (pending or paid) and is cleared
when the item is voided or its money comes back after it was paid (REFUNDED, REVERSED):
UNIQUE on it means a reward part is in at most one live item.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class PayoutBatch(Base):
    """``prepared`` (items held in clearing, not known to be at PayPal) → ``submitted``
    (PayPal's ``payout_batch_id`` recorded) → ``settled`` (every item paid or voided);
    ``denied`` when PayPal refused the request itself (every item voided).
    ``lease_until``/``lease_owner``: the worker that may send or poll it until then."""

    __tablename__ = "payout_batches"
    __table_args__ = (
        CheckConstraint(
            "status IN ('prepared', 'submitted', 'settled', 'denied')", name="status_known"
        ),
        CheckConstraint("item_count >= 0 AND item_count <= 15000", name="item_count_range"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_payout_batches_status_lease", "status", "lease_until"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    sender_batch_id: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    payout_batch_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    paypal_status: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PayoutItem(Base):
    """One member's cash in one currency, in one batch. ``pending`` (held in clearing) →
    ``paid`` (PayPal said SUCCESS: posted) or ``voided`` (back to cash payable). A paid item
    whose money PayPal brought back stays ``paid`` with ``void_reason`` ``refunded`` or
    ``reversed`` and its reversal transfers (ADR 19)."""

    __tablename__ = "payout_items"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'paid', 'voided')", name="status_known"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_payout_items_batch_id_status", "batch_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_batches.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    sender_item_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    paypal_status: Mapped[str | None] = mapped_column(String(16))
    payout_item_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    error_name: Mapped[str | None] = mapped_column(String(64))
    void_reason: Mapped[str | None] = mapped_column(String(40))
    # SHA-256 of the sealed receiver the item was prepared for (ciphertext, random nonce):
    # after a receiver problem the member is paid again only once it was set anew.
    receiver_seal_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PayoutItemPart(Base):
    """A posted cash reward part paid by an item, with the pending transfer that holds its
    amount in clearing (``transfer_id``, derived from the item and the part)."""

    __tablename__ = "payout_item_parts"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    transfer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_items.id"), index=True)
    reward_part_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reward_parts.id"), index=True)
    # UNIQUE, NULL once the item is voided: a part is in at most one live item.
    open_part_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    cash_payable_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
