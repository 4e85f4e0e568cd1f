"""Every query of coupons."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.coupons.models import Coupon


def add(session: Session, *coupons: Coupon) -> None:
    session.add_all(coupons)
    session.flush()


def by_code(session: Session, code: str, *, for_update: bool = False) -> Coupon | None:
    statement = select(Coupon).where(Coupon.code == code)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def code_taken(session: Session, code: str) -> bool:
    return session.scalar(select(Coupon.id).where(Coupon.code == code)) is not None


def of_parts(
    session: Session, part_ids: Collection[UUID], *, for_update: bool = False
) -> list[Coupon]:
    if not part_ids:
        return []
    statement = select(Coupon).where(Coupon.reward_part_id.in_(list(part_ids)))
    if for_update:
        statement = statement.order_by(Coupon.id).with_for_update()
    return list(session.scalars(statement))


def of_member(session: Session, member_id: UUID) -> list[Coupon]:
    statement = (
        select(Coupon).where(Coupon.member_id == member_id).order_by(Coupon.issued_at, Coupon.id)
    )
    return list(session.scalars(statement))


def due_to_expire(session: Session, *, now: datetime, limit: int) -> list[Coupon]:
    """Issued coupons past their expiry, locked (others' are skipped on PostgreSQL)."""
    statement = (
        select(Coupon)
        .where(Coupon.status == "issued", Coupon.expires_at <= now)
        .order_by(Coupon.expires_at, Coupon.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))
