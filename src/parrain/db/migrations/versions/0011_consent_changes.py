"""consent changes: a version counter and a log of the members whose check answer may have
changed, written by triggers, so an in-process cache of check rows stays exact (ADR 25)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, trigger suffix, timing, the member column of the row or None for "every member").
#: Every table and column the consent check's statement reads (consent.repository._CHECK_SQL)
#: is covered; enrolments only by the writes that change who is enrolled where, so the
#: events flow, which updates enrolments all the time, never touches the counter.
_WATCHED: tuple[tuple[str, str, str, str | None], ...] = (
    ("consent_grants", "insert", "INSERT", "member_id"),
    (
        "consent_grants",
        "update",
        "UPDATE OF member_id, campaign_id, data_category, data_use, channel, status, "
        "granted_at, expires_at, territories, declaration_version, notice_sha256, "
        "declaration_id",
        "member_id",
    ),
    ("consent_grants", "delete", "DELETE", "member_id"),
    ("members", "update", "UPDATE OF id, erased_at", "id"),
    ("members", "delete", "DELETE", "id"),
    ("enrolments", "insert", "INSERT", "member_id"),
    ("enrolments", "update", "UPDATE OF member_id, campaign_id", "member_id"),
    ("enrolments", "delete", "DELETE", "member_id"),
    ("consent_declarations", "insert", "INSERT", None),
    ("consent_declarations", "update", "UPDATE", None),
    ("consent_declarations", "delete", "DELETE", None),
)

# One PostgreSQL function per table (the member column differs). The upsert's row lock on
# consent_state is held until commit: writers that change an answer take turns, so the
# order of versions is the order of commits. The row is re-created if it was emptied (a
# TRUNCATE), with a new epoch.
_PG_LOG = """INSERT INTO consent_state AS s (id, version) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET version = s.version + 1
            RETURNING s.version INTO changed;
        INSERT INTO consent_changes (version, member_id) VALUES (changed, {member});"""

_PG_FUNCTION = """
CREATE FUNCTION consent_changed_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        {log_old}
    ELSIF TG_OP = 'UPDATE' THEN
        {log_moved}
        {log_new}
    ELSE
        {log_new}
    END IF;
    RETURN NULL;
END
$$
"""

_SQLITE_TRIGGER = """
CREATE TRIGGER {name} AFTER {timing} ON {table}
{when}BEGIN
    INSERT INTO consent_state (id, version) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET version = version + 1;
    INSERT INTO consent_changes (version, member_id)
        SELECT version, {member} FROM consent_state WHERE id = 1;
END
"""


def _pg_member(column: str | None, row: str) -> str:
    return "NULL" if column is None else f"{row}.{column}"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    epoch = (
        "md5(random()::text || clock_timestamp()::text)"
        if postgresql
        else "(lower(hex(randomblob(16))))"
    )
    op.create_table(
        "consent_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=32), server_default=sa.text(epoch), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_consent_state_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_state")),
    )
    op.create_table(
        "consent_changes",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_consent_changes")),
    )
    op.execute("INSERT INTO consent_state (id, version) VALUES (1, 0)")
    if postgresql:
        members = {table: column for table, _s, _t, column in _WATCHED}
        for table, column in members.items():
            log_old = _PG_LOG.format(member=_pg_member(column, "OLD"))
            # An update that moves a row to another member changes the old member's answer
            # too (no code does it; the trigger is there so that it stays exact).
            moved = (
                "NULL;"
                if column is None
                else f"IF OLD.{column} IS DISTINCT FROM NEW.{column} THEN {log_old} END IF;"
            )
            op.execute(
                _PG_FUNCTION.format(
                    table=table,
                    log_old=log_old,
                    log_moved=moved,
                    log_new=_PG_LOG.format(member=_pg_member(column, "NEW")),
                )
            )
        for table, suffix, timing, _column in _WATCHED:
            op.execute(
                f"CREATE TRIGGER consent_changed_{table}_{suffix} AFTER {timing} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION consent_changed_{table}()"
            )
        return
    for table, suffix, timing, column in _WATCHED:
        name = f"consent_changed_{table}_{suffix}"
        if column is None:
            op.execute(
                _SQLITE_TRIGGER.format(
                    name=name, timing=timing, table=table, when="", member="NULL"
                )
            )
            continue
        if suffix in ("insert", "update"):
            op.execute(
                _SQLITE_TRIGGER.format(
                    name=name, timing=timing, table=table, when="", member=f"NEW.{column}"
                )
            )
        if suffix in ("delete", "update"):
            # An update that moves a row to another member changes the old member's answer
            # too (no code does it; the trigger is there so that it stays exact).
            when = "" if suffix == "delete" else f"WHEN OLD.{column} IS NOT NEW.{column}\n"
            op.execute(
                _SQLITE_TRIGGER.format(
                    name=f"{name}_old" if suffix == "update" else name,
                    timing=timing,
                    table=table,
                    when=when,
                    member=f"OLD.{column}",
                )
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, suffix, _timing, column in _WATCHED:
        name = f"consent_changed_{table}_{suffix}"
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            if suffix == "update" and column is not None:
                op.execute(f"DROP TRIGGER IF EXISTS {name}_old")
    if postgresql:
        for table in dict.fromkeys(table for table, _s, _t, _c in _WATCHED):
            op.execute(f"DROP FUNCTION IF EXISTS consent_changed_{table}()")
    op.drop_table("consent_changes")
    op.drop_table("consent_state")
