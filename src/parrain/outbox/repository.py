"""Every query of the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from parrain.outbox.models import OutboxMessage


def add(session: Session, message: OutboxMessage) -> None:
    session.add(message)
    session.flush()


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxMessage]:
    """Take up to ``limit`` undelivered messages that are due, oldest first, and lease them
    until ``lease_until`` (one more attempt each). On PostgreSQL rows another worker is
    claiming are skipped (``SKIP LOCKED``); a SQLite write transaction is alone anyway."""
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= now)
        .order_by(OutboxMessage.available_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    messages = list(session.scalars(statement))
    for message in messages:
        message.available_at = lease_until
        message.attempts += 1
    session.flush()
    return messages


def get(session: Session, message_id: object) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def mark(
    session: Session,
    message_id: object,
    *,
    delivered_at: datetime | None,
    available_at: datetime | None,
    error: str | None,
) -> None:
    values: dict[str, object] = {"last_error": error}
    if delivered_at is not None:
        values["delivered_at"] = delivered_at
    if available_at is not None:
        values["available_at"] = available_at
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.delivered_at.is_(None))
        .values(**values)
    )


def counts(session: Session) -> tuple[int, int]:
    """(undelivered, delivered) messages."""
    waiting = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
    )
    done = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.delivered_at.is_not(None))
    )
    return int(waiting or 0), int(done or 0)


def by_topic(session: Session, topic: str) -> list[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.topic == topic)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return list(session.scalars(statement))
