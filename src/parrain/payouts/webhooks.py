"""PayPal's payout notifications, received (ADR 19).

A notification is only a hint that something changed at PayPal. Its body is never trusted
for an amount or a status:

1. the body must be a PayPal ``event`` (else :class:`PayPalWebhookInvalid`);
2. PayPal must confirm it sent it: its transmission headers, our webhook id and the event go
   to ``verify-webhook-signature`` (else :class:`PayPalWebhookUnverified`);
3. the event names one of our batches (by PayPal's batch id, or our ``sender_batch_id`` /
   ``sender_item_id``); an event about anything else is acknowledged and logged (ids and the
   event type only);
4. what it names is read again from PayPal, with our credentials: an item event reads that
   item (``GET /v1/payments/payouts-item/{id}``), a batch event the whole batch by the id we
   recorded (``GET /v1/payments/payouts/{id}``, the worker's poll); and PayPal's answer is
   applied with the worker's own code (:func:`service.apply_item`, :func:`service.apply_batch`).

Each step that talks to PayPal runs outside any transaction; each write is one transaction.
Applying the same answer twice changes nothing, so a duplicate notification, a retry by
PayPal, or a notification racing the worker's poll is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.payouts import repository, service
from parrain.payouts.errors import (
    PayPalNotFound,
    PayPalValidationError,
    PayPalWebhookInvalid,
    PayPalWebhooksNotConfigured,
    PayPalWebhookUnverified,
)
from parrain.payouts.models import PayoutBatch
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_webhook_wire import (
    TransmissionHeaders,
    VerificationStatus,
    VerifyWebhookSignature,
    WebhookEvent,
)
from parrain.payouts.providers.paypal_wire import CreatedBatch
from parrain.payouts.schemas import BatchStatus, SettleReport, WebhookOutcome, WebhookReceipt

_log = get_logger(__name__)

#: The lease owner a notification's poll writes as (it takes no lease: see apply_batch).
WEBHOOK_OWNER = "paypal-webhook"
#: Longest body accepted: PayPal's payout events are a few kilobytes.
MAX_EVENT_BYTES = 256 * 1024


def parse_event(body: bytes) -> tuple[dict[str, Any], WebhookEvent]:
    """The event as received (every field kept, for the verification) and as read."""
    if len(body) > MAX_EVENT_BYTES:
        raise PayPalWebhookInvalid("the notification is too large", limit=MAX_EVENT_BYTES)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayPalWebhookInvalid("the notification is not JSON") from None
    if not isinstance(document, dict):
        raise PayPalWebhookInvalid("the notification is not a JSON object")
    try:
        event = WebhookEvent.model_validate(document)
    except ValidationError as error:
        problems = [
            {"location": ".".join(str(p) for p in problem["loc"]), "message": problem["msg"]}
            for problem in error.errors()[:10]
        ]
        raise PayPalWebhookInvalid(
            "the notification is not a PayPal event", problems=problems
        ) from None
    return document, event


def verify(
    *,
    client: PayPalClient,
    webhook_id: str,
    headers: Mapping[str, str],
    document: dict[str, Any],
) -> None:
    """Ask PayPal whether it sent ``document`` with these headers to our webhook; raise
    :class:`PayPalWebhookUnverified` unless it says SUCCESS. PayPal being unreachable raises
    its own error (a 5xx: PayPal sends the notification again later)."""
    try:
        transmission = TransmissionHeaders.from_headers(headers)
    except ValidationError:
        raise PayPalWebhookUnverified(
            "the notification's PAYPAL-TRANSMISSION-*, PAYPAL-CERT-URL or PAYPAL-AUTH-ALGO "
            "headers are missing or malformed"
        ) from None
    request = VerifyWebhookSignature.of(transmission, webhook_id=webhook_id, event=document)
    try:
        status = client.verify_webhook_signature(request)
    except PayPalValidationError:
        status = VerificationStatus.FAILURE  # PayPal refused to check what we passed on
    if status is not VerificationStatus.SUCCESS:
        raise PayPalWebhookUnverified("PayPal did not confirm that it sent this notification")


@dataclass(frozen=True, slots=True)
class _Target:
    batch_id: UUID
    status: str
    sender_batch_id: str
    payout_batch_id: str | None
    attempts: int


def _find(session: Session, event: WebhookEvent) -> _Target | None:
    batch: PayoutBatch | None = None
    payout_batch_id = event.payout_batch_id()
    if payout_batch_id is not None:
        batch = repository.get_batch_by_payout_batch_id(session, payout_batch_id)
    if batch is None and event.is_batch_event and (sender := event.sender_batch_id()):
        batch = repository.get_batch_by_sender_batch_id(session, sender)
    if batch is None and event.is_item_event:
        detail = event.resource.get("payout_item")
        sender_item_id = detail.get("sender_item_id") if isinstance(detail, Mapping) else None
        if isinstance(sender_item_id, str):
            item = repository.get_item_by_sender_item_id(session, sender_item_id)
            batch = repository.get_batch(session, item.batch_id) if item is not None else None
    if batch is None:
        return None
    return _Target(
        batch_id=batch.id,
        status=batch.status,
        sender_batch_id=batch.sender_batch_id,
        payout_batch_id=batch.payout_batch_id,
        attempts=batch.attempts,
    )


def _receipt(
    event: WebhookEvent, outcome: WebhookOutcome, report: SettleReport | None = None
) -> WebhookReceipt:
    report = report or SettleReport()
    _log.info(
        "paypal_webhook_received",
        event_id=event.id,
        event_type=event.event_type,
        outcome=outcome.value,
        paid=report.paid,
        voided=report.voided,
        taken_back=report.taken_back,
    )
    return WebhookReceipt(
        event_id=event.id,
        event_type=event.event_type,
        outcome=outcome,
        paid=report.paid,
        voided=report.voided,
        taken_back=report.taken_back,
    )


def _recover_id(
    *, database: Database, client: PayPalClient, clock: Clock, target: _Target, event: WebhookEvent
) -> WebhookReceipt:
    """A batch we sent whose answer was lost, PayPal's id unknown (ADR 16): the batch event
    names PayPal's id; PayPal's own answer for that id must carry our ``sender_batch_id``.
    The id is recorded, then the batch is read and applied like any batch event."""
    payout_batch_id = event.payout_batch_id()
    if payout_batch_id is None:
        return _receipt(event, WebhookOutcome.NOT_SUBMITTED)
    try:
        page = client.get_batch_page(payout_batch_id, page=1, page_size=1)
    except PayPalNotFound:
        return _receipt(event, WebhookOutcome.UNKNOWN_BATCH)
    if page.header.sender_batch_id != target.sender_batch_id:
        return _receipt(event, WebhookOutcome.UNKNOWN_BATCH)
    created = CreatedBatch(
        payout_batch_id=page.header.payout_batch_id,
        sender_batch_id=target.sender_batch_id,
        batch_status=page.header.batch_status,
        recovered=True,
    )
    database.run(
        lambda session: service.record_submitted(
            session=session,
            batch_id=target.batch_id,
            created=created,
            owner=WEBHOOK_OWNER,
            clock=clock,
        )
    )
    # The batch is complete at PayPal (that is what its event says): settle it now.
    details = client.get_batch(created.payout_batch_id)
    report = database.run(
        lambda session: service.apply_batch(
            session=session,
            batch_id=target.batch_id,
            details=details,
            owner=WEBHOOK_OWNER,
            clock=clock,
        )
    )
    return _receipt(event, WebhookOutcome.RECOVERED, report)


def apply_event(
    *, database: Database, client: PayPalClient, clock: Clock, event: WebhookEvent
) -> WebhookReceipt:
    """Act on a verified event: read again what it names and apply PayPal's answer."""
    if not (event.is_item_event or event.is_batch_event):
        return _receipt(event, WebhookOutcome.IGNORED)
    target = database.read(lambda session: _find(session, event))
    if target is None:
        return _receipt(event, WebhookOutcome.UNKNOWN_BATCH)
    if target.status == BatchStatus.PREPARED.value:
        if event.is_batch_event and target.attempts > 0:
            return _recover_id(
                database=database, client=client, clock=clock, target=target, event=event
            )
        return _receipt(event, WebhookOutcome.NOT_SUBMITTED)
    if target.status == BatchStatus.DENIED.value or target.payout_batch_id is None:
        return _receipt(event, WebhookOutcome.IGNORED)
    payout_batch_id = target.payout_batch_id
    payout_item_id = event.payout_item_id()
    try:
        if payout_item_id is not None:
            result = client.get_item(payout_item_id)
            report = database.run(
                lambda session: service.apply_item(
                    session=session, batch_id=target.batch_id, result=result, clock=clock
                )
            )
        else:
            details = client.get_batch(payout_batch_id)
            report = database.run(
                lambda session: service.apply_batch(
                    session=session,
                    batch_id=target.batch_id,
                    details=details,
                    owner=WEBHOOK_OWNER,
                    clock=clock,
                )
            )
    except PayPalNotFound:
        return _receipt(event, WebhookOutcome.UNKNOWN_BATCH)
    return _receipt(event, WebhookOutcome.APPLIED, report)


def receive(
    *,
    database: Database,
    client: PayPalClient | None,
    clock: Clock,
    webhook_id: str | None,
    body: bytes,
    headers: Mapping[str, str],
) -> WebhookReceipt:
    """A notification as it came: parse, verify with PayPal, then act on it."""
    document, event = parse_event(body)
    if client is None or webhook_id is None:
        raise PayPalWebhooksNotConfigured(
            "PayPal's endpoint, credentials and webhook id (PARRAIN_PAYOUTS_PAYPAL_*) are "
            "needed to verify notifications"
        )
    verify(client=client, webhook_id=webhook_id, headers=headers, document=document)
    return apply_event(database=database, client=client, clock=clock, event=event)
