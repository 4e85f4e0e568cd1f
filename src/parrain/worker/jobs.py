"""The jobs the worker runs. Each returns what it did, for the log and the caller."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from uuid import UUID

import httpx
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.config import ConsentSettings, WebhookSettings
from parrain.consent import service as consent
from parrain.coupons import service as coupons
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.kit.errors import KeysNotConfigured, UnknownKeyId
from parrain.ledger import service as ledger
from parrain.logging import get_logger
from parrain.members.service import MemberKeys
from parrain.outbox import service as outbox
from parrain.outbox.delivery import Endpoint, deliver_due
from parrain.privacy import retention
from parrain.referrals import progress
from parrain.referrals import queue as event_queue

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


def discard_parked_events(
    *, database: Database, clock: Clock, keep_days: int, batch_size: int = 500
) -> int:
    """Discard the queued events set aside longer than ``keep_days``
    (:func:`parrain.referrals.queue.discard_parked`), a batch per transaction; how many."""
    discarded = 0
    while True:
        ids = database.run(
            lambda session: event_queue.discard_parked(
                session=session, clock=clock, keep_days=keep_days, limit=batch_size
            )
        )
        discarded += len(ids)
        if len(ids) < batch_size:
            break
    if discarded:
        _log.info("parked_events_discarded", count=discarded)
    return discarded


@dataclass(frozen=True, slots=True)
class DrainRound:
    applied: int  # queued events applied
    failed: int  # failures counted against single events (each left queued, or aside)
    waiting: int  # still queued after the round (another drain's, or received meanwhile)
    parked: int  # left aside after too many failures: they need a person
    #: Every event tried failed, not for a fault of its own (wrong keys, say): the round
    #: stopped without counting it against them; wait before the next.
    stalled: bool = False


def drain_queued_events(
    *,
    database: Database,
    keys: MemberKeys | Callable[[], MemberKeys],
    clock: Clock,
    batch_size: int = 500,
) -> DrainRound:
    """Apply the events received for later (ADR 28), ``batch_size`` per transaction, until
    none is waiting or another process is draining (PostgreSQL). ``keys`` may be given as a
    function, called only if some event is waiting (a worker without keys configured runs
    its other jobs as long as nothing is queued).

    A batch that fails is applied again one event at a time. An event that fails alone while
    others of the batch go through has one failure counted against it (it stays queued, is
    not tried again in this round, and after :data:`~parrain.referrals.queue.MAX_ATTEMPTS`
    rounds that failed on it is left aside: logged, counted in ``parked``). When every event
    of the batch fails alone (the first few tried, with none going through), or the only
    one fails for want of a master key, the fault is not theirs (wrong keys, say): nothing
    is counted, the round ends ``stalled`` with an error logged, and a later round tries
    again."""
    counts = database.read(lambda session: event_queue.queue_counts(session=session))
    if counts.waiting == 0:  # an idle poll reads; it takes no write lock
        return DrainRound(applied=0, failed=0, waiting=0, parked=counts.parked)
    if callable(keys):
        keys = keys()
    applied = failed = 0
    stalled = False
    skipped: set[str] = set()  # failed alone in this round: not tried again in it
    while True:
        try:
            count = database.run(
                partial(_drain, keys=keys, clock=clock, limit=batch_size, skip=skipped)
            )
        except Exception as error:  # isolated below, event by event
            _log.warning("queued_events_batch_failed", error=type(error).__name__)
            ids = database.read(
                lambda session: event_queue.next_queued(
                    session=session, limit=batch_size, skip=skipped
                )
            )
            if not ids:  # another process drained them meanwhile
                continue
            went_through, alone = _apply_one_by_one(database, ids, keys=keys, clock=clock)
            applied += went_through
            if not went_through and (
                len(ids) > 1 or all(isinstance(e, _NOT_THE_EVENTS) for e in alone.values())
            ):
                _log.error("queued_events_all_failed", error=type(alone[ids[0]]).__name__)
                stalled = True
                break
            for event_id, error in alone.items():
                failed += 1
                skipped.add(event_id)
                attempts = database.run(partial(_record_failure, event_id=event_id))
                log = _log.error if attempts >= event_queue.MAX_ATTEMPTS else _log.warning
                log(
                    "queued_event_failed",
                    event_id=event_id,
                    attempts=attempts,
                    error=type(error).__name__,  # not its message: it may quote values
                )
            continue
        applied += count
        if count == 0:
            break
    counts = database.read(lambda session: event_queue.queue_counts(session=session))
    if applied or failed:
        _log.info("queued_events_drained", applied=applied, failed=failed, waiting=counts.waiting)
    return DrainRound(
        applied=applied,
        failed=failed,
        waiting=counts.waiting,
        parked=counts.parked,
        stalled=stalled,
    )


#: Events tried alone, all failing, after which a batch's failure is taken for everyone's.
_ALL_FAILING = 3
#: Errors that say the worker lacks a key, never that the event is bad: never counted.
_NOT_THE_EVENTS = (UnknownKeyId, KeysNotConfigured)


def _apply_one_by_one(
    database: Database, ids: Sequence[str], *, keys: MemberKeys, clock: Clock
) -> tuple[int, dict[str, Exception]]:
    """Drain each of ``ids`` in a transaction of its own: how many went through, and the
    ones that failed with their error. Stops after the first :data:`_ALL_FAILING` if all
    failed."""
    went_through = 0
    failures: dict[str, Exception] = {}
    for event_id in ids:
        if not went_through and len(failures) == _ALL_FAILING:
            break
        try:
            went_through += database.run(
                partial(_drain, keys=keys, clock=clock, limit=1, only=[event_id])
            )
        except Exception as error:  # reported to the caller, which counts it
            failures[event_id] = error
    return went_through, failures


def _drain(
    session: Session,
    *,
    keys: MemberKeys,
    clock: Clock,
    limit: int,
    only: Sequence[str] | None = None,
    skip: Collection[str] = (),
) -> int:
    return event_queue.drain(
        session=session, keys=keys, clock=clock, limit=limit, only=only, skip=skip
    )


def _record_failure(session: Session, *, event_id: str) -> int:
    return event_queue.record_failure(session=session, event_id=event_id)
