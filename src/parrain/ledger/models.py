"""Ledger tables. The database repeats the invariants as CHECK and UNIQUE constraints, so a
bug in the service cannot overspend an account or resolve a pending transfer twice."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 "
            "AND credits_pending >= 0 AND credits_posted >= 0",
            name="balances_not_negative",
        ),
        CheckConstraint(
            "NOT debits_must_not_exceed_credits "
            "OR debits_pending + debits_posted <= credits_posted",
            name="debits_within_credits",
        ),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits "
            "OR credits_pending + credits_posted <= debits_posted",
            name="credits_within_debits",
        ),
        CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name="one_limit_at_most",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(200), unique=True)
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerTransfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
        CheckConstraint(
            "phase IN ('single', 'pending', 'post_pending', 'void_pending')", name="phase_known"
        ),
        CheckConstraint(
            "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
            name="resolution_names_pending",
        ),
        CheckConstraint(
            "(phase = 'pending') = (status IS NOT NULL)", name="status_only_on_pending"
        ),
        CheckConstraint(
            "status IS NULL OR status IN ('pending', 'posted', 'voided', 'expired')",
            name="status_known",
        ),
        Index("ix_ledger_transfers_debit_account_id", "debit_account_id"),
        Index("ix_ledger_transfers_credit_account_id", "credit_account_id"),
        Index("ix_ledger_transfers_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    debit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    phase: Mapped[str] = mapped_column(String(16))
    # UNIQUE: a pending transfer is posted or voided at most once.
    pending_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), unique=True
    )
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=0)
    linked: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
