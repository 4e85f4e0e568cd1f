"""Every query of members. Lookups take hashes: no plaintext reaches SQL."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from parrain.members.models import Member


def get(session: Session, member_id: UUID, *, for_update: bool = False) -> Member | None:
    statement = select(Member).where(Member.id == member_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def get_by_marketplace_user(session: Session, *, market: str, user_hash: str) -> Member | None:
    statement = select(Member).where(
        Member.market == market, Member.marketplace_user_hash == user_hash
    )
    return session.scalars(statement).one_or_none()


def ids_by_marketplace_user(
    session: Session, *, market: str, user_hashes: Collection[str]
) -> dict[str, UUID]:
    if not user_hashes:
        return {}
    params = {"market": market, "hashes": list(user_hashes)}
    return {row[0]: row[1] for row in session.execute(_IDS_BY_USER, params)}


# Built once: the events path asks this for every batch.
_IDS_BY_USER = select(Member.marketplace_user_hash, Member.id).where(
    Member.market == bindparam("market"),
    Member.marketplace_user_hash.in_(bindparam("hashes", expanding=True)),
)


def list_by_email(session: Session, *, market: str, email_hash: str) -> list[Member]:
    statement = (
        select(Member)
        .where(Member.market == market, Member.email_hash == email_hash)
        .order_by(Member.created_at, Member.id)
    )
    return list(session.scalars(statement))


def add(session: Session, member: Member) -> None:
    session.add(member)
    session.flush()
