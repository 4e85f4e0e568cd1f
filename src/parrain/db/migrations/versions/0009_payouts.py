"""payouts: batches sent to PayPal, their items, and the reward parts each item pays

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_batch_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("payout_batch_id", sa.String(length=64), nullable=True),
        sa.Column("paypal_status", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('prepared', 'submitted', 'settled', 'denied')",
            name=op.f("ck_payout_batches_status_known"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_payout_batches_attempts_not_negative")),
        sa.CheckConstraint(
            "item_count >= 0 AND item_count <= 15000",
            name=op.f("ck_payout_batches_item_count_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_batches")),
        sa.UniqueConstraint("payout_batch_id", name=op.f("uq_payout_batches_payout_batch_id")),
        sa.UniqueConstraint("sender_batch_id", name=op.f("uq_payout_batches_sender_batch_id")),
    )
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payout_batches_status_lease", ["status", "lease_until"], unique=False
        )

    op.create_table(
        "payout_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("sender_item_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paypal_status", sa.String(length=16), nullable=True),
        sa.Column("payout_item_id", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("error_name", sa.String(length=64), nullable=True),
        sa.Column("void_reason", sa.String(length=40), nullable=True),
        sa.Column("receiver_seal_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'voided')", name=op.f("ck_payout_items_status_known")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payout_items_amount_positive")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["payout_batches.id"],
            name=op.f("fk_payout_items_batch_id_payout_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_payout_items_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_items")),
        sa.UniqueConstraint("sender_item_id", name=op.f("uq_payout_items_sender_item_id")),
    )
    with op.batch_alter_table("payout_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payout_items_batch_id_status", ["batch_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payout_items_member_id"), ["member_id"], unique=False)

    op.create_table(
        "payout_item_parts",
        sa.Column("transfer_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("reward_part_id", sa.Uuid(), nullable=False),
        sa.Column("open_part_id", sa.Uuid(), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("cash_payable_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payout_item_parts_amount_positive")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_payout_item_parts_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["cash_payable_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payout_item_parts_cash_payable_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["payout_items.id"], name=op.f("fk_payout_item_parts_item_id_payout_items")
        ),
        sa.ForeignKeyConstraint(
            ["reward_part_id"],
            ["reward_parts.id"],
            name=op.f("fk_payout_item_parts_reward_part_id_reward_parts"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_payout_item_parts")),
        sa.UniqueConstraint("open_part_id", name=op.f("uq_payout_item_parts_open_part_id")),
    )
    with op.batch_alter_table("payout_item_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payout_item_parts_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payout_item_parts_reward_part_id"), ["reward_part_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payout_item_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_item_parts_reward_part_id"))
        batch_op.drop_index(batch_op.f("ix_payout_item_parts_item_id"))
    op.drop_table("payout_item_parts")
    with op.batch_alter_table("payout_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_items_member_id"))
        batch_op.drop_index("ix_payout_items_batch_id_status")
    op.drop_table("payout_items")
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_batches_status_lease")
    op.drop_table("payout_batches")
