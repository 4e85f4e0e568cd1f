"""coupons: prize coupons (one per coupon prize part), and the campaigns' coupon rules

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reward_part_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("order_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_coupons_amount_positive")),
        sa.CheckConstraint("min_spend_minor >= 0", name=op.f("ck_coupons_min_spend_not_negative")),
        sa.CheckConstraint(
            "(status = 'redeemed') = (order_id IS NOT NULL)",
            name=op.f("ck_coupons_redeemed_has_order"),
        ),
        sa.CheckConstraint(
            "status IN ('issued', 'redeemed', 'expired', 'cancelled')",
            name=op.f("ck_coupons_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_coupons_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_coupons_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reward_part_id"],
            ["reward_parts.id"],
            name=op.f("fk_coupons_reward_part_id_reward_parts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
        sa.UniqueConstraint("reward_part_id", name=op.f("uq_coupons_reward_part_id")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_member_id"), ["member_id"], unique=False)
        batch_op.create_index("ix_coupons_status_expires", ["status", "expires_at"], unique=False)

    # A clawed-back prize's coupon part whose coupon was already spent.
    with op.batch_alter_table("reward_parts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reward_parts_status_known"), type_="check")
        batch_op.create_check_constraint(
            "status_known", "status IN ('held', 'posted', 'voided', 'clawed_back', 'spent')"
        )

    # Existing campaigns get the defaults a new draft gets (CampaignCreate).
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("coupon_min_spend_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("coupon_valid_days", sa.Integer(), nullable=False, server_default="90")
        )
        batch_op.create_check_constraint(
            "coupon_min_spend_not_negative", "coupon_min_spend_minor >= 0"
        )
        batch_op.create_check_constraint("coupon_valid_days_positive", "coupon_valid_days >= 1")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("coupon_min_spend_minor", server_default=None)
        batch_op.alter_column("coupon_valid_days", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("reward_parts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_reward_parts_status_known"), type_="check")
        batch_op.create_check_constraint(
            "status_known", "status IN ('held', 'posted', 'voided', 'clawed_back')"
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        for name in ("coupon_valid_days_positive", "coupon_min_spend_not_negative"):
            batch_op.drop_constraint(op.f(f"ck_campaigns_{name}"), type_="check")
        batch_op.drop_column("coupon_valid_days")
        batch_op.drop_column("coupon_min_spend_minor")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_coupons_status_expires")
        batch_op.drop_index(batch_op.f("ix_coupons_member_id"))
    op.drop_table("coupons")
