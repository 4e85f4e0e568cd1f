"""Enqueue messages in the caller's transaction; claim and settle them for delivery.
Nothing here commits, and nothing here talks to the network (see :mod:`.delivery`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.outbox import repository
from parrain.outbox.errors import InvalidOutboxMessage
from parrain.outbox.models import OutboxMessage
from parrain.outbox.schemas import Envelope

#: ``consent.withdrawn``, ``member.erased``: lowercase words joined by dots.
TOPIC = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_PAYLOAD_BYTES = 16 * 1024


def enqueue(*, session: Session, topic: str, payload: Mapping[str, Any], clock: Clock) -> UUID:
    """Add a message, to be delivered once the caller's transaction commits (and never if it
    rolls back). ``payload`` is JSON data with ids and codes only: no personal data goes to
    an integration through here."""
    if len(topic) > 80 or not TOPIC.fullmatch(topic):
        raise InvalidOutboxMessage(f"{topic!r} is not a topic like 'consent.withdrawn'")
    try:
        size = len(json.dumps(dict(payload), allow_nan=False).encode())
    except (TypeError, ValueError) as error:
        raise InvalidOutboxMessage(f"an outbox payload must be JSON data: {error}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidOutboxMessage(f"an outbox payload is at most {MAX_PAYLOAD_BYTES} bytes")
    now = clock.now()
    message = OutboxMessage(
        id=new_id(),
        topic=topic,
        payload=dict(payload),
        created_at=now,
        available_at=now,
        attempts=0,
        delivered_at=None,
        last_error=None,
    )
    repository.add(session, message)
    return message.id


def claim(*, session: Session, clock: Clock, lease: timedelta, limit: int = 100) -> list[Envelope]:
    """Lease up to ``limit`` due messages for one delivery attempt each: for ``lease`` no
    other worker takes them; if the attempt is never settled (a crash), they come back."""
    now = clock.now()
    return [
        Envelope(
            id=message.id,
            topic=message.topic,
            payload=message.payload,
            created_at=message.created_at,
            attempt=message.attempts,
        )
        for message in repository.claim_due(session, now=now, lease_until=now + lease, limit=limit)
    ]


def delivered(*, session: Session, message_id: UUID, clock: Clock) -> None:
    repository.mark(session, message_id, delivered_at=clock.now(), available_at=None, error=None)


def failed(*, session: Session, message_id: UUID, error: str, retry_at: datetime) -> None:
    """Record a failed attempt; the message is tried again from ``retry_at``."""
    repository.mark(
        session, message_id, delivered_at=None, available_at=retry_at, error=error[:200]
    )


def retry_delay(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff: ``base`` after the first failure, doubling, at most ``cap``."""
    delay: timedelta = base * 2 ** max(0, min(attempt - 1, 30))
    return min(cap, delay)


def counts(*, session: Session) -> tuple[int, int]:
    """(undelivered, delivered) messages."""
    return repository.counts(session)
