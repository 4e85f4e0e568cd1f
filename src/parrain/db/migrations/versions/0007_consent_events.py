"""consent events (append-only) and the current state of consents

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:39:28.217309
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("declaration_id", sa.Uuid(), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("data_category", sa.String(length=200), nullable=False),
        sa.Column("data_use", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("notice_sha256", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("method", sa.String(length=120), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(action = 'granted' AND expires_at IS NOT NULL) OR (action <> 'granted' AND expires_at IS NULL)",
            name=op.f("ck_consent_events_expiry_with_grant"),
        ),
        sa.CheckConstraint(
            "action IN ('shown', 'granted', 'refused', 'withdrawn', 'expired')",
            name=op.f("ck_consent_events_action_known"),
        ),
        sa.CheckConstraint(
            "language IN ('en', 'fr')", name=op.f("ck_consent_events_language_known")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_consent_events_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["consent_declarations.id"],
            name=op.f("fk_consent_events_declaration_id_consent_declarations"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_consent_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_events_member_id_notice_sha256",
            ["member_id", "notice_sha256"],
            unique=False,
        )
        batch_op.create_index(
            "ix_consent_events_member_id_occurred_at", ["member_id", "occurred_at"], unique=False
        )

    op.create_table(
        "consent_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("data_category", sa.String(length=200), nullable=False),
        sa.Column("data_use", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("declaration_id", sa.Uuid(), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("notice_sha256", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("territories", sa.JSON(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "status <> 'granted' OR (granted_at IS NOT NULL AND expires_at IS NOT NULL)",
            name=op.f("ck_consent_grants_granted_has_window"),
        ),
        sa.CheckConstraint(
            "status IN ('granted', 'refused', 'withdrawn', 'expired')",
            name=op.f("ck_consent_grants_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_consent_grants_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["consent_declarations.id"],
            name=op.f("fk_consent_grants_declaration_id_consent_declarations"),
        ),
        sa.ForeignKeyConstraint(
            ["last_event_id"],
            ["consent_events.id"],
            name=op.f("fk_consent_grants_last_event_id_consent_events"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_consent_grants_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_grants")),
        sa.UniqueConstraint(
            "member_id",
            "data_category",
            "data_use",
            "channel",
            "campaign_id",
            name="uq_consent_grants_item",
        ),
    )
    with op.batch_alter_table("consent_grants", schema=None) as batch_op:
        batch_op.create_index("ix_consent_grants_due", ["status", "expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_grants_due")

    op.drop_table("consent_grants")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_member_id_occurred_at")
        batch_op.drop_index("ix_consent_events_member_id_notice_sha256")

    op.drop_table("consent_events")
