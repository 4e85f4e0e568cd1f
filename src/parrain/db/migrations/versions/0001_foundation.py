"""foundation: ledger, campaigns, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-30 04:01:39.364296
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entries_hash")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), nullable=False),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name=op.f("ck_ledger_accounts_one_limit_at_most"),
        ),
        sa.CheckConstraint(
            "NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted",
            name=op.f("ck_ledger_accounts_credits_within_debits"),
        ),
        sa.CheckConstraint(
            "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
            name=op.f("ck_ledger_accounts_debits_within_credits"),
        ),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name=op.f("ck_ledger_accounts_balances_not_negative"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("reference", name=op.f("uq_ledger_accounts_reference")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("friends_needed", sa.Integer(), nullable=False),
        sa.Column("enrolment_window_hours", sa.Integer(), nullable=False),
        sa.Column("reward_cash_minor", sa.BigInteger(), nullable=False),
        sa.Column("reward_coupon_minor", sa.BigInteger(), nullable=False),
        sa.Column("friend_welcome_minor", sa.BigInteger(), nullable=False),
        sa.Column("holding_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("budget_account_id", sa.Uuid(), nullable=False),
        sa.Column("cash_payable_account_id", sa.Uuid(), nullable=False),
        sa.Column("coupon_liability_account_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'live', 'paused', 'ended')", name=op.f("ck_campaigns_status_known")
        ),
        sa.CheckConstraint(
            "enrolment_window_hours >= 1", name=op.f("ck_campaigns_enrolment_window_positive")
        ),
        sa.CheckConstraint(
            "friend_welcome_minor >= 0", name=op.f("ck_campaigns_welcome_not_negative")
        ),
        sa.CheckConstraint(
            "friends_needed >= 1", name=op.f("ck_campaigns_friends_needed_positive")
        ),
        sa.CheckConstraint("holding_days >= 0", name=op.f("ck_campaigns_holding_not_negative")),
        sa.CheckConstraint(
            "reward_cash_minor >= 0 AND reward_coupon_minor >= 0 AND reward_cash_minor + reward_coupon_minor > 0",
            name=op.f("ck_campaigns_reward_positive"),
        ),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_campaigns_window_ordered")),
        sa.ForeignKeyConstraint(
            ["budget_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_campaigns_budget_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["cash_payable_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_campaigns_cash_payable_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["coupon_liability_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_campaigns_coupon_liability_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("debit_account_id", sa.Uuid(), nullable=False),
        sa.Column("credit_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("pending_id", sa.Uuid(), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(phase = 'pending') = (status IS NOT NULL)",
            name=op.f("ck_ledger_transfers_status_only_on_pending"),
        ),
        sa.CheckConstraint(
            "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
            name=op.f("ck_ledger_transfers_resolution_names_pending"),
        ),
        sa.CheckConstraint(
            "phase IN ('single', 'pending', 'post_pending', 'void_pending')",
            name=op.f("ck_ledger_transfers_phase_known"),
        ),
        sa.CheckConstraint(
            "status IS NULL OR status IN ('pending', 'posted', 'voided', 'expired')",
            name=op.f("ck_ledger_transfers_status_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_transfers_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_ledger_transfers_two_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_transfers_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_transfers_debit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_transfers_pending_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_ledger_transfers_pending_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_transfers_credit_account_id", ["credit_account_id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_debit_account_id", ["debit_account_id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_transfers_status_expires_at", ["status", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_status_expires_at")
        batch_op.drop_index("ix_ledger_transfers_debit_account_id")
        batch_op.drop_index("ix_ledger_transfers_credit_account_id")

    op.drop_table("ledger_transfers")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))

    op.drop_table("campaigns")
    op.drop_table("ledger_accounts")
    op.drop_table("audit_head")
    op.drop_table("audit_entries")
