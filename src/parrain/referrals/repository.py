"""Every query of referrals. Lookups take keyed hashes: no personal value reaches SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parrain.referrals.models import (
    Click,
    Enrolment,
    Friend,
    Install,
    Reward,
    RewardPart,
)


def add(session: Session, *rows: object) -> None:
    session.add_all(rows)
    session.flush()


# Enrolments


def get_enrolment(
    session: Session, enrolment_id: UUID, *, for_update: bool = False
) -> Enrolment | None:
    statement = select(Enrolment).where(Enrolment.id == enrolment_id)
    if for_update:
        # FOR NO KEY UPDATE on PostgreSQL: it does not conflict with the FOR KEY SHARE locks
        # that inserting or updating a row referencing the enrolment takes (a friend's
        # enrolment_id, a reward). Plain FOR UPDATE does, and two events crediting friends of
        # one member each held a key-share lock and waited for the other's: a deadlock.
        statement = statement.with_for_update(key_share=True)
    return session.scalars(statement).one_or_none()


def get_enrolment_by_code(session: Session, code: str) -> Enrolment | None:
    return session.scalars(select(Enrolment).where(Enrolment.code == code)).one_or_none()


def get_enrolment_of(session: Session, *, campaign_id: UUID, member_id: UUID) -> Enrolment | None:
    statement = select(Enrolment).where(
        Enrolment.campaign_id == campaign_id, Enrolment.member_id == member_id
    )
    return session.scalars(statement).one_or_none()


def code_taken(session: Session, code: str) -> bool:
    return session.scalar(select(Enrolment.id).where(Enrolment.code == code)) is not None


def insert_click_if_new(session: Session, click: Click) -> Click:
    """Insert ``click`` unless its link already has a click from that device; return the
    row that stands (the new one, or the first click)."""
    values = {
        "id": click.id,
        "enrolment_id": click.enrolment_id,
        "campaign_id": click.campaign_id,
        "device_hash": click.device_hash,
        "token": click.token,
        "clicked_at": click.clicked_at,
    }
    if session.get_bind().dialect.name == "postgresql":
        session.execute(postgresql.insert(Click).values(values).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(Click).values(values).on_conflict_do_nothing())
    stored = session.scalars(
        select(Click).where(
            Click.enrolment_id == click.enrolment_id, Click.device_hash == click.device_hash
        )
    ).one()
    return stored


def friends_of_enrolment(session: Session, enrolment_id: UUID) -> list[Friend]:
    statement = (
        select(Friend)
        .where(Friend.enrolment_id == enrolment_id)
        .order_by(Friend.qualified_at, Friend.signed_up_at, Friend.id)
    )
    return list(session.scalars(statement))


def enrolments_of_member(session: Session, member_id: UUID) -> list[Enrolment]:
    statement = (
        select(Enrolment)
        .where(Enrolment.member_id == member_id)
        .order_by(Enrolment.enrolled_at, Enrolment.id)
    )
    return list(session.scalars(statement))


def friends_by_ids(session: Session, friend_ids: list[UUID]) -> list[Friend]:
    if not friend_ids:
        return []
    return list(session.scalars(select(Friend).where(Friend.id.in_(friend_ids))))


def friend_of_member(session: Session, member_id: UUID) -> Friend | None:
    """The friend row of a member who signed up through the programme (friends are members)."""
    return session.scalars(select(Friend).where(Friend.member_id == member_id)).one_or_none()


def click_count(session: Session, enrolment_id: UUID) -> int:
    statement = select(func.count()).select_from(Click).where(Click.enrolment_id == enrolment_id)
    return int(session.scalar(statement) or 0)


# Rewards


def rewards_of_enrolment(session: Session, enrolment_id: UUID) -> list[Reward]:
    statement = (
        select(Reward).where(Reward.enrolment_id == enrolment_id).order_by(Reward.generation)
    )
    return list(session.scalars(statement))


def welcome_parts_of_friend(session: Session, friend_id: UUID) -> list[RewardPart]:
    statement = select(RewardPart).where(RewardPart.friend_id == friend_id).order_by(RewardPart.id)
    return list(session.scalars(statement))


def current_reward(
    session: Session, enrolment_id: UUID, *, for_update: bool = False
) -> Reward | None:
    statement = (
        select(Reward)
        .where(Reward.enrolment_id == enrolment_id)
        .order_by(Reward.generation.desc())
        .limit(1)
    )
    if for_update:
        statement = statement.with_for_update(key_share=True)  # see get_enrolment
    return session.scalars(statement).first()


def parts_of(session: Session, reward_id: UUID) -> list[RewardPart]:
    statement = select(RewardPart).where(RewardPart.reward_id == reward_id).order_by(RewardPart.id)
    return list(session.scalars(statement))


def due_rewards(session: Session, *, now: datetime, limit: int) -> list[Reward]:
    statement = (
        select(Reward)
        .where(Reward.status == "held", Reward.release_at <= now)
        .order_by(Reward.release_at, Reward.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


# The funnel


def _count(session: Session, statement: Select[Any]) -> int:
    return int(session.scalar(statement) or 0)


def funnel_counts(session: Session, campaign_id: UUID) -> dict[str, int]:
    def count_of(model: type, *conditions: object) -> int:
        statement = select(func.count()).select_from(model).where(*conditions)  # type: ignore[arg-type]
        return _count(session, statement)

    rewards: dict[str, int] = {
        status: int(n)
        for status, n in session.execute(
            select(Reward.status, func.count())
            .where(Reward.campaign_id == campaign_id)
            .group_by(Reward.status)
        )
    }
    return {
        "enrolments": count_of(Enrolment, Enrolment.campaign_id == campaign_id),
        "clicks": count_of(Click, Click.campaign_id == campaign_id),
        "installs": count_of(Install, Install.campaign_id == campaign_id),
        "signups": count_of(Friend, Friend.campaign_id == campaign_id),
        "qualified": count_of(
            Friend, Friend.campaign_id == campaign_id, Friend.status == "qualified"
        ),
        **{f"rewards_{status}": rewards.get(status, 0) for status in _REWARD_STATUSES},
    }


_REWARD_STATUSES = ("held", "posted", "voided", "refused", "clawed_back")
