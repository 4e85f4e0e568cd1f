"""consent: data-use declarations (versioned, written once) and the notices rendered from them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:51:57.045789
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_declarations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_consent_declarations_version_positive")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_consent_declarations_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_declarations")),
        sa.UniqueConstraint(
            "campaign_id", "version", name=op.f("uq_consent_declarations_campaign_id_version")
        ),
    )
    op.create_table(
        "consent_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("declaration_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("readability_score", sa.Float(), nullable=False),
        sa.Column("readability_formula", sa.String(length=32), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "language IN ('en', 'fr')", name=op.f("ck_consent_notices_language_known")
        ),
        sa.CheckConstraint(
            "readability_formula IN ('flesch_reading_ease', 'kandel_moles')",
            name=op.f("ck_consent_notices_readability_formula_known"),
        ),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["consent_declarations.id"],
            name=op.f("fk_consent_notices_declaration_id_consent_declarations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_notices")),
        sa.UniqueConstraint(
            "declaration_id", "language", name=op.f("uq_consent_notices_declaration_id_language")
        ),
    )
    with op.batch_alter_table("consent_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_notices_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_notices_sha256"))

    op.drop_table("consent_notices")
    op.drop_table("consent_declarations")
