"""Every query of operators and their sessions. Sessions are found by their token's hash."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from parrain.operators.models import Operator, OperatorSession


def get(session: Session, operator_id: UUID, *, for_update: bool = False) -> Operator | None:
    statement = select(Operator).where(Operator.id == operator_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def get_by_username_key(session: Session, key: str, *, for_update: bool = False) -> Operator | None:
    statement = select(Operator).where(Operator.username_key == key)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def list_all(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username_key)))


def add(session: Session, row: Operator | OperatorSession) -> None:
    session.add(row)
    session.flush()


def get_session_by_token_hash(
    session: Session, token_hash: str
) -> tuple[OperatorSession, Operator] | None:
    row = session.execute(
        select(OperatorSession, Operator)
        .join(Operator, Operator.id == OperatorSession.operator_id)
        .where(OperatorSession.token_hash == token_hash)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def touch_session(
    session: Session, session_id: UUID, *, now: datetime, not_since: datetime
) -> None:
    """Set ``last_seen_at`` to ``now`` unless it is already later than ``not_since``: a
    conditional UPDATE, so a page view writes the row at most once a minute."""
    session.execute(
        update(OperatorSession)
        .where(OperatorSession.id == session_id, OperatorSession.last_seen_at <= not_since)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke_sessions_of(session: Session, operator_id: UUID, *, now: datetime) -> int:
    """Revoke every live session of an operator; how many were."""
    result = session.execute(
        update(OperatorSession)
        .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
