"""Every query of API keys. Lookups are by id, name or public prefix; never by secret."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from parrain.access.models import ApiKey


def get(session: Session, key_id: UUID, *, for_update: bool = False) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.id == key_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def get_by_prefix(session: Session, prefix: str, *, for_update: bool = False) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.prefix == prefix)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def get_by_name(session: Session, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()


def list_all(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def add(session: Session, api_key: ApiKey) -> None:
    session.add(api_key)
    session.flush()


def mark_used(session: Session, key_id: UUID, *, now: datetime, not_since: datetime) -> bool:
    """Set ``last_used_at`` to ``now`` unless it is already later than ``not_since``.

    The condition is in the UPDATE itself, so processes that race to record a use write
    the row once; returns whether this call wrote it.
    """
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= not_since),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
