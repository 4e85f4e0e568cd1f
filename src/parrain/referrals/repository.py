"""Every query of referrals. Lookups take keyed hashes: no personal value reaches SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.referrals.models import (
    Click,
    Enrolment,
    Friend,
    Install,
    Order,
    ReferralEvent,
    Reward,
    RewardPart,
    Sighting,
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


def list_enrolments(session: Session, *, campaign_id: UUID) -> list[Enrolment]:
    statement = (
        select(Enrolment)
        .where(Enrolment.campaign_id == campaign_id)
        .order_by(Enrolment.enrolled_at, Enrolment.id)
    )
    return list(session.scalars(statement))


# Clicks


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


def get_click(session: Session, click_id: UUID) -> Click | None:
    return session.get(Click, click_id)


def get_click_by_token(session: Session, token: str) -> Click | None:
    return session.scalars(select(Click).where(Click.token == token)).one_or_none()


def clicks_of_device(session: Session, *, market: str, device_hash: str) -> list[Click]:
    statement = (
        select(Click)
        .join(Campaign, Campaign.id == Click.campaign_id)
        .where(Click.device_hash == device_hash, Campaign.market == market)
    )
    return list(session.scalars(statement))


# Installs


def latest_install_before(
    session: Session, *, market: str, device_hash: str, at: datetime
) -> Install | None:
    statement = (
        select(Install)
        .where(
            Install.market == market,
            Install.device_hash == device_hash,
            Install.installed_at <= at,
        )
        .order_by(Install.installed_at.desc(), Install.id.desc())
        .limit(1)
    )
    return session.scalars(statement).first()


# Friends


def get_friend(session: Session, friend_id: UUID) -> Friend | None:
    return session.get(Friend, friend_id)


def get_friend_by_user(session: Session, *, market: str, user_hash: str) -> Friend | None:
    statement = select(Friend).where(Friend.market == market, Friend.user_hash == user_hash)
    return session.scalars(statement).one_or_none()


def friends_of_device(session: Session, *, market: str, device_hash: str) -> list[Friend]:
    statement = (
        select(Friend)
        .where(Friend.market == market, Friend.device_hash == device_hash)
        .order_by(Friend.signed_up_at, Friend.id)
    )
    return list(session.scalars(statement))


def friends_sharing(
    session: Session, friend: Friend, *, after: datetime, until: datetime
) -> list[Friend]:
    """Other friends of ``friend``'s market who signed up in ``(after, until]`` with the same
    user, device or email hash: their new-customer test may depend on ``friend``."""
    statement = (
        select(Friend)
        .where(
            Friend.market == friend.market,
            Friend.id != friend.id,
            Friend.signed_up_at > after,
            Friend.signed_up_at <= until,
            or_(
                Friend.device_hash == friend.device_hash,
                Friend.email_hash == friend.email_hash,
                Friend.user_hash == friend.user_hash,
            ),
        )
        .order_by(Friend.signed_up_at, Friend.id)
    )
    return list(session.scalars(statement))


def friends_of_enrolment(session: Session, enrolment_id: UUID) -> list[Friend]:
    statement = (
        select(Friend)
        .where(Friend.enrolment_id == enrolment_id)
        .order_by(Friend.qualified_at, Friend.signed_up_at, Friend.id)
    )
    return list(session.scalars(statement))


# Sightings


def seen_before(
    session: Session,
    *,
    market: str,
    hashes: Sequence[tuple[str, str]],
    since: datetime,
    before: datetime,
    exclude_source: str,
) -> str | None:
    """The first kind (``user``, ``device``, ``email``) among ``hashes`` seen in ``market`` in
    ``[since, before)`` by another source than ``exclude_source``; ``None`` if none was."""
    for kind, value_hash in hashes:
        statement = (
            select(Sighting.id)
            .where(
                Sighting.market == market,
                Sighting.kind == kind,
                Sighting.value_hash == value_hash,
                Sighting.seen_at >= since,
                Sighting.seen_at < before,
                Sighting.source != exclude_source,
            )
            .limit(1)
        )
        if session.scalar(statement) is not None:
            return kind
    return None


# Orders


def get_order(session: Session, *, market: str, order_ref: str) -> Order | None:
    statement = select(Order).where(Order.market == market, Order.order_ref == order_ref)
    return session.scalars(statement).one_or_none()


# Events


def get_event(session: Session, event_id: str) -> ReferralEvent | None:
    return session.get(ReferralEvent, event_id)


# Rewards


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


def rewards_of_enrolment(session: Session, enrolment_id: UUID) -> list[Reward]:
    statement = (
        select(Reward).where(Reward.enrolment_id == enrolment_id).order_by(Reward.generation)
    )
    return list(session.scalars(statement))


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


def enrolment_ids(rows: Iterable[Friend]) -> set[UUID]:
    return {row.enrolment_id for row in rows if row.enrolment_id is not None}
