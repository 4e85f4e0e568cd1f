"""queued events: a marketplace event received for later keeps its sealed body on its row
until a drain applies it (ADR 28)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUED = "queued_body IS NOT NULL"


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite adds them without copying the table).
    op.add_column("referral_events", sa.Column("queued_key", sa.LargeBinary(), nullable=True))
    op.add_column("referral_events", sa.Column("queued_body", sa.LargeBinary(), nullable=True))
    op.add_column(
        "referral_events",
        sa.Column("queued_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_referral_events_queued",
        "referral_events",
        ["received_at", "id"],
        unique=False,
        sqlite_where=sa.text(_QUEUED),
        postgresql_where=sa.text(_QUEUED),
    )


def downgrade() -> None:
    op.drop_index("ix_referral_events_queued", table_name="referral_events")
    with op.batch_alter_table("referral_events") as table:
        table.drop_column("queued_attempts")
        table.drop_column("queued_body")
        table.drop_column("queued_key")
