"""Webhook delivery of outbox messages: signed POSTs, at least once, retried with backoff.

Each run claims due messages in one short transaction (a lease), sends them with no
transaction open, then records each result in another. A worker killed between sending and
recording sends the message again once its lease ends: integrations must treat the message
id (``X-Parrain-Message-Id``, also ``id`` in the body) as an idempotency key.

Signature (``X-Parrain-Signature: t=<unix seconds>,v1=<hex>``): HMAC-SHA256 under the
shared secret of ``"<t>." + body``, as bytes. A receiver recomputes it over the raw body,
compares in constant time and refuses a ``t`` too far from its clock
(:func:`verify_signature` does all three).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

import httpx
from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.outbox import service
from parrain.outbox.errors import InvalidWebhookSignature
from parrain.outbox.schemas import Envelope

SIGNATURE_HEADER = "X-Parrain-Signature"
MESSAGE_ID_HEADER = "X-Parrain-Message-Id"
TOPIC_HEADER = "X-Parrain-Topic"

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where messages go and how they are signed."""

    url: str
    secret: bytes
    timeout_seconds: float = 5.0
    lease: timedelta = timedelta(seconds=60)
    retry_base: timedelta = timedelta(seconds=10)
    retry_cap: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int
    failed: int


def body_of(envelope: Envelope) -> bytes:
    """The JSON a webhook carries (compact, keys sorted: the bytes that are signed)."""
    document = {
        "id": str(envelope.id),
        "topic": envelope.topic,
        "created_at": envelope.created_at.isoformat(),
        "attempt": envelope.attempt,
        "data": envelope.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: bytes, header: str | None, body: bytes, *, now: int, tolerance_seconds: int = 300
) -> None:
    """Check a received webhook's signature header; raise :class:`InvalidWebhookSignature`."""
    if not header:
        raise InvalidWebhookSignature("the webhook has no signature")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidWebhookSignature("the webhook's signature is malformed") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise InvalidWebhookSignature("the webhook's signature is too old or from the future")
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise InvalidWebhookSignature("the webhook's signature does not match its body")


def deliver_due(
    *,
    database: Database,
    clock: Clock,
    endpoint: Endpoint,
    client: httpx.Client,
    limit: int = 100,
) -> DeliveryReport:
    """Send every message due now (up to ``limit`` per claim, claiming until none is left)
    and record each result. A 2xx answer delivers a message; anything else (another status,
    a timeout, a refused connection) schedules the next attempt."""
    delivered = failed = 0
    while True:
        claimed = database.run(
            lambda session: service.claim(
                session=session, clock=clock, lease=endpoint.lease, limit=limit
            )
        )
        if not claimed:
            return DeliveryReport(delivered=delivered, failed=failed)
        for envelope in claimed:
            error = _send(envelope, endpoint, client, clock)
            if error is None:
                database.run(partial(_delivered, message_id=envelope.id, clock=clock))
                delivered += 1
                continue
            retry_at = clock.now() + service.retry_delay(
                envelope.attempt, base=endpoint.retry_base, cap=endpoint.retry_cap
            )
            database.run(partial(_failed, message_id=envelope.id, error=error, retry_at=retry_at))
            failed += 1
            _log.warning(
                "webhook_not_delivered",
                message_id=str(envelope.id),
                topic=envelope.topic,
                attempt=envelope.attempt,
                reason=error,
            )
        if failed:
            # The endpoint is failing: leave the rest for the next run rather than hammering it.
            return DeliveryReport(delivered=delivered, failed=failed)


def _delivered(session: Session, *, message_id: UUID, clock: Clock) -> None:
    service.delivered(session=session, message_id=message_id, clock=clock)


def _failed(session: Session, *, message_id: UUID, error: str, retry_at: datetime) -> None:
    service.failed(session=session, message_id=message_id, error=error, retry_at=retry_at)


def _send(envelope: Envelope, endpoint: Endpoint, client: httpx.Client, clock: Clock) -> str | None:
    body = body_of(envelope)
    headers = {
        "Content-Type": "application/json",
        MESSAGE_ID_HEADER: str(envelope.id),
        TOPIC_HEADER: envelope.topic,
        SIGNATURE_HEADER: sign(endpoint.secret, int(clock.now().timestamp()), body),
    }
    try:
        response = client.post(
            endpoint.url, content=body, headers=headers, timeout=endpoint.timeout_seconds
        )
    except httpx.HTTPError as error:
        return f"{type(error).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"
