"""The jobs the worker runs. Each returns what it did, for the log and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import httpx
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.config import ConsentSettings, WebhookSettings
from parrain.consent import service as consent
from parrain.coupons import service as coupons
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.ledger import service as ledger
from parrain.logging import get_logger
from parrain.outbox import service as outbox
from parrain.outbox.delivery import Endpoint, deliver_due
from parrain.privacy import retention
from parrain.referrals import progress

_log = get_logger(__name__)

SYSTEM_ACTOR = "system:worker"


def expire_pending_transfers(*, database: Database, clock: Clock, batch_size: int = 500) -> int:
    """Void every pending transfer whose timeout has passed; return how many were voided.

    Works in batches of ``batch_size``, one transaction each, each audited with its count.
    """
    total = 0
    while True:

        def expire_batch(session: Session) -> int:
            expired = ledger.void_expired_pending(session=session, clock=clock, limit=batch_size)
            if expired:
                audit.record(
                    session=session,
                    actor=SYSTEM_ACTOR,
                    action="ledger.pending_expired",
                    subject="ledger",
                    details={
                        "count": len(expired),
                        "pending_ids": [str(t.pending_id) for t in expired],
                    },
                    clock=clock,
                )
            return len(expired)

        count = database.run(expire_batch)
        total += count
        if count == 0:  # not "< batch_size": another worker may have taken part of a batch
            break
    if total:
        _log.info("pending_transfers_expired", count=total)
    return total


def release_held_rewards(*, database: Database, clock: Clock, batch_size: int = 100) -> int:
    """Post every held prize whose holding period has passed; return how many were posted.

    One transaction per batch; each prize is posted under its enrolment's lock and audited
    (``reward.posted``), so a refund arriving at the same moment either voids it first or
    finds it posted. Several workers may run this at once: a prize posts once.
    """
    total = 0
    while True:
        count = database.run(
            lambda session: progress.release_due_rewards(session, clock=clock, limit=batch_size)
        )
        total += count
        if count == 0:
            break
    if total:
        _log.info("held_rewards_released", count=total)
    return total


def expire_consents(
    *,
    database: Database,
    clock: Clock,
    batch_size: int = 200,
    changes_kept: int | None = None,
) -> int:
    """Record an ``expired`` event (and a ``consent.expired`` takedown message) for every
    grant whose expiry has passed; return how many. One transaction per batch; several
    workers may run it at once (each takes rows the others do not hold).

    Then prune the consent change log to its last ``changes_kept`` changes (default:
    ``PARRAIN_CONSENT_CHECK_CHANGES_KEPT``; ADR 25)."""
    total = 0
    while True:
        count = database.run(
            lambda session: consent.expire_due(session=session, clock=clock, limit=batch_size)
        )
        total += count
        if count == 0:
            break
    if total:
        _log.info("consents_expired", count=total)
    keep = ConsentSettings().check_changes_kept if changes_kept is None else changes_kept
    pruned = database.run(lambda session: consent.prune_changes(session=session, keep=keep))
    if pruned:
        _log.info("consent_changes_pruned", count=pruned)
    return total


@dataclass(frozen=True, slots=True)
class WebhookRound:
    delivered: int
    failed: int
    waiting: int  # undelivered messages left after the round (due later, or no endpoint)


def deliver_webhooks(
    *, database: Database, clock: Clock, settings: WebhookSettings, client: httpx.Client
) -> WebhookRound:
    """Send the outbox's due messages to the configured webhook endpoint (none configured:
    they wait, and the count says so)."""
    delivered = failed = 0
    if settings.url is not None and settings.secret is not None:
        endpoint = Endpoint(
            url=settings.url,
            secret=settings.secret.get_secret_value().encode(),
            timeout_seconds=settings.timeout_seconds,
            retry_base=timedelta(seconds=settings.retry_base_seconds),
            retry_cap=timedelta(seconds=settings.retry_max_seconds),
        )
        report = deliver_due(database=database, clock=clock, endpoint=endpoint, client=client)
        delivered, failed = report.delivered, report.failed
    waiting, _done = database.read(lambda session: outbox.counts(session=session))
    return WebhookRound(delivered=delivered, failed=failed, waiting=waiting)


def expire_coupons(*, database: Database, clock: Clock, batch_size: int = 500) -> int:
    """Expire the prize coupons past their date, their value back to the budget (one
    transaction per batch, audited); return how many."""
    total = 0
    while True:
        count = database.run(
            lambda session: coupons.expire_due(session=session, clock=clock, limit=batch_size)
        )
        total += count
        if count == 0:
            break
    if total:
        _log.info("coupons_expired", count=total)
    return total


def sweep_retention(
    *, database: Database, clock: Clock, default_days: int, batch_size: int = 200
) -> int:
    """Erase the members whose retention has passed (ADR 14), a batch of members per
    transaction; return how many were erased."""
    erased = 0
    after: UUID | None = None
    while True:

        def batch(session: Session, start: UUID | None = after) -> retention.SweepReport:
            return retention.sweep(
                session=session,
                clock=clock,
                default_days=default_days,
                after=start,
                limit=batch_size,
            )

        report = database.run(batch)
        erased += len(report.erased)
        if report.last_id is None:
            break
        after = report.last_id
    if erased:
        database.truncate_log()  # the erased keys leave the SQLite log too
        _log.info("retention_sweep", erased=erased)
    return erased
