"""members: pseudonymous members with encrypted personal fields and lookup hashes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("marketplace_user_hash", sa.String(length=64), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("marketplace_user_id", sa.LargeBinary(), nullable=False),
        sa.Column("email", sa.LargeBinary(), nullable=False),
        sa.Column("username", sa.LargeBinary(), nullable=False),
        sa.Column("photo_ref", sa.LargeBinary(), nullable=True),
        sa.Column("paypal_receiver", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "market",
            "marketplace_user_hash",
            name=op.f("uq_members_market_marketplace_user_hash"),
        ),
    )
    op.create_index(op.f("ix_members_email_hash"), "members", ["email_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_members_email_hash"), table_name="members")
    op.drop_table("members")
