"""Every query of members. Lookups take hashes: no plaintext reaches SQL."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from parrain.db.rows import rows_of
from parrain.db.session import DriverCursor
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
    """The member id of each of ``user_hashes`` in ``market``, on the driver's cursor (the
    events path asks this for every batch; SQLAlchemy's work cost more than the query's)."""
    if not user_hashes:
        return {}
    dialect = session.get_bind().dialect.name
    rows = rows_of(_MEMBERS, dialect)
    mark = "?" if dialect == "sqlite" else "%s"
    hashes = list(user_hashes)
    found: dict[str, UUID] = {}
    with DriverCursor.of(session) as cursor:
        for start in range(0, len(hashes), _CHUNK):
            part = hashes[start : start + _CHUNK]
            sql = (
                f"SELECT marketplace_user_hash, id FROM {_MEMBERS.name} "  # noqa: S608
                f"WHERE market = {mark} AND marketplace_user_hash IN "
                f"({', '.join(mark for _ in part)})"
            )
            for row in cursor.query(sql, [market, *part]):
                decoded = rows.decode_columns(("marketplace_user_hash", "id"), row)
                found[decoded["marketplace_user_hash"]] = decoded["id"]
    return found


_MEMBERS: Table = Member.__table__  # type: ignore[assignment]
#: The most hashes one ``IN`` list carries.
_CHUNK = 500


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
