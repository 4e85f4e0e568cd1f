"""referrals: enrolments, clicks, installs, friends, orders, sightings, events, rewards; campaign referral rules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 05:58:39.874022
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_events",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_events")),
    )
    with op.batch_alter_table("referral_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_events_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "referral_sightings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "kind IN ('user', 'device', 'email')", name=op.f("ck_referral_sightings_kind_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_sightings")),
        sa.UniqueConstraint("source", "kind", name=op.f("uq_referral_sightings_source_kind")),
    )
    with op.batch_alter_table("referral_sightings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_sightings_lookup",
            ["market", "kind", "value_hash", "seen_at"],
            unique=False,
        )

    op.create_table(
        "enrolments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_enrolments_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_enrolments_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint(
            "campaign_id", "member_id", name=op.f("uq_enrolments_campaign_id_member_id")
        ),
        sa.UniqueConstraint("code", name=op.f("uq_enrolments_code")),
    )
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrolments_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_enrolments_member_id"), ["member_id"], unique=False)

    op.create_table(
        "referral_clicks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enrolment_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_referral_clicks_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["enrolments.id"],
            name=op.f("fk_referral_clicks_enrolment_id_enrolments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_clicks")),
        sa.UniqueConstraint(
            "enrolment_id", "device_hash", name=op.f("uq_referral_clicks_enrolment_id_device_hash")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_referral_clicks_token")),
    )
    with op.batch_alter_table("referral_clicks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_clicks_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_clicks_device_hash"), ["device_hash"], unique=False
        )

    op.create_table(
        "rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enrolment_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'posted', 'voided', 'refused', 'clawed_back')",
            name=op.f("ck_rewards_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_rewards_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["enrolment_id"], ["enrolments.id"], name=op.f("fk_rewards_enrolment_id_enrolments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint(
            "enrolment_id", "generation", name=op.f("uq_rewards_enrolment_id_generation")
        ),
    )
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rewards_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index("ix_rewards_status_release", ["status", "release_at"], unique=False)

    op.create_table(
        "referral_installs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("click_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_referral_installs_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["click_id"],
            ["referral_clicks.id"],
            name=op.f("fk_referral_installs_click_id_referral_clicks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_installs")),
        sa.UniqueConstraint("event_id", name=op.f("uq_referral_installs_event_id")),
    )
    with op.batch_alter_table("referral_installs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_installs_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            "ix_referral_installs_market_device", ["market", "device_hash"], unique=False
        )

    op.create_table(
        "referral_friends",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("user_agent_hash", sa.String(length=64), nullable=True),
        sa.Column("typed_code", sa.String(length=32), nullable=True),
        sa.Column("signup_event_id", sa.String(length=100), nullable=False),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("new_customer", sa.Boolean(), nullable=False),
        sa.Column("seen_before", sa.String(length=16), nullable=True),
        sa.Column("install_id", sa.Uuid(), nullable=True),
        sa.Column("enrolment_id", sa.Uuid(), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("attribution_reason", sa.String(length=24), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=40), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_credited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disqualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disqualified_reason", sa.String(length=24), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'not_new', 'waiting', 'qualified', 'late', 'not_credited', 'unqualified', 'disqualified')",
            name=op.f("ck_referral_friends_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_referral_friends_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["enrolments.id"],
            name=op.f("fk_referral_friends_enrolment_id_enrolments"),
        ),
        sa.ForeignKeyConstraint(
            ["install_id"],
            ["referral_installs.id"],
            name=op.f("fk_referral_friends_install_id_referral_installs"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_referral_friends_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_friends")),
        sa.UniqueConstraint(
            "market", "user_hash", name=op.f("uq_referral_friends_market_user_hash")
        ),
        sa.UniqueConstraint("member_id", name=op.f("uq_referral_friends_member_id")),
    )
    with op.batch_alter_table("referral_friends", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_referral_friends_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_friends_enrolment_id"), ["enrolment_id"], unique=False
        )
        batch_op.create_index(
            "ix_referral_friends_market_device", ["market", "device_hash"], unique=False
        )
        batch_op.create_index(
            "ix_referral_friends_market_email", ["market", "email_hash"], unique=False
        )

    op.create_table(
        "referral_closures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_closures")),
        sa.UniqueConstraint(
            "market", "user_hash", name=op.f("uq_referral_closures_market_user_hash")
        ),
    )
    op.create_table(
        "referral_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("order_ref", sa.String(length=100), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("fully_refunded", sa.Boolean(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charged_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('placed', 'completed', 'cancelled', 'unknown')",
            name=op.f("ck_referral_orders_status_known"),
        ),
        sa.CheckConstraint(
            "amount_minor >= 0", name=op.f("ck_referral_orders_amount_not_negative")
        ),
        sa.CheckConstraint(
            "refunded_minor >= 0", name=op.f("ck_referral_orders_refunded_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_orders")),
        sa.UniqueConstraint(
            "market", "order_ref", name=op.f("uq_referral_orders_market_order_ref")
        ),
    )
    with op.batch_alter_table("referral_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_orders_market_user", ["market", "user_hash"], unique=False
        )

    op.create_table(
        "reward_parts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("friend_id", sa.Uuid(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('cash', 'coupon', 'welcome')", name=op.f("ck_reward_parts_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('held', 'posted', 'voided', 'clawed_back')",
            name=op.f("ck_reward_parts_status_known"),
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_reward_parts_amount_positive")),
        sa.ForeignKeyConstraint(
            ["friend_id"],
            ["referral_friends.id"],
            name=op.f("fk_reward_parts_friend_id_referral_friends"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_parts_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_parts")),
    )
    with op.batch_alter_table("reward_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reward_parts_friend_id"), ["friend_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reward_parts_reward_id"), ["reward_id"], unique=False)

    # Existing campaigns get the defaults a new draft gets (CampaignCreate).
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "attribution_model",
                sa.String(length=16),
                nullable=False,
                server_default="last_click",
            )
        )
        batch_op.add_column(
            sa.Column(
                "attribution_window_hours", sa.Integer(), nullable=False, server_default="168"
            )
        )
        batch_op.add_column(
            sa.Column("new_customer_days", sa.Integer(), nullable=False, server_default="365")
        )
        batch_op.add_column(
            sa.Column(
                "qualifying_action", sa.String(length=16), nullable=False, server_default="signup"
            )
        )
        batch_op.add_column(
            sa.Column("min_order_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("landing_url", sa.String(length=2048), nullable=True))
        batch_op.create_check_constraint(
            "attribution_model_known", "attribution_model IN ('first_click', 'last_click')"
        )
        batch_op.create_check_constraint(
            "attribution_window_positive", "attribution_window_hours >= 1"
        )
        batch_op.create_check_constraint("new_customer_days_not_negative", "new_customer_days >= 0")
        batch_op.create_check_constraint(
            "qualifying_action_known", "qualifying_action IN ('signup', 'first_order')"
        )
        batch_op.create_check_constraint("min_order_not_negative", "min_order_minor >= 0")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        for column in (
            "attribution_model",
            "attribution_window_hours",
            "new_customer_days",
            "qualifying_action",
            "min_order_minor",
        ):
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        for name in (
            "attribution_model_known",
            "attribution_window_positive",
            "new_customer_days_not_negative",
            "qualifying_action_known",
            "min_order_not_negative",
        ):
            batch_op.drop_constraint(op.f(f"ck_campaigns_{name}"), type_="check")
        batch_op.drop_column("landing_url")
        batch_op.drop_column("min_order_minor")
        batch_op.drop_column("qualifying_action")
        batch_op.drop_column("new_customer_days")
        batch_op.drop_column("attribution_window_hours")
        batch_op.drop_column("attribution_model")

    with op.batch_alter_table("reward_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_parts_reward_id"))
        batch_op.drop_index(batch_op.f("ix_reward_parts_friend_id"))

    op.drop_table("reward_parts")
    with op.batch_alter_table("referral_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_orders_market_user")

    op.drop_table("referral_orders")
    op.drop_table("referral_closures")
    with op.batch_alter_table("referral_friends", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_friends_market_email")
        batch_op.drop_index("ix_referral_friends_market_device")
        batch_op.drop_index(batch_op.f("ix_referral_friends_enrolment_id"))
        batch_op.drop_index(batch_op.f("ix_referral_friends_campaign_id"))

    op.drop_table("referral_friends")
    with op.batch_alter_table("referral_installs", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_installs_market_device")
        batch_op.drop_index(batch_op.f("ix_referral_installs_campaign_id"))

    op.drop_table("referral_installs")
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_index("ix_rewards_status_release")
        batch_op.drop_index(batch_op.f("ix_rewards_campaign_id"))

    op.drop_table("rewards")
    with op.batch_alter_table("referral_clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_clicks_device_hash"))
        batch_op.drop_index(batch_op.f("ix_referral_clicks_campaign_id"))

    op.drop_table("referral_clicks")
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolments_member_id"))
        batch_op.drop_index(batch_op.f("ix_enrolments_campaign_id"))

    op.drop_table("enrolments")
    with op.batch_alter_table("referral_sightings", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_sightings_lookup")

    op.drop_table("referral_sightings")
    with op.batch_alter_table("referral_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_events_received_at"))

    op.drop_table("referral_events")
