"""The payout worker: a round collects members' cash into batches, sends the prepared
batches to PayPal and polls the submitted ones. Each step is one transaction; the calls to
PayPal happen between them, under a lease on the batch, so any number of workers may run
and a worker killed at any point leaves work the next one finishes (ADR 18):

* killed after a batch was prepared: it is sent by the next worker that claims it;
* killed while sending, or before recording PayPal's answer: the next worker sends it again
  under the same ``sender_batch_id``; PayPal refuses a second batch and the client recovers
  the first (``create_or_recover_batch``);
* killed while polling: nothing was written, the next poll does it again.

``step`` is called after each step with its name (tests kill the process there); ``progress``
is called with (what, done, total) for a progress display.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.config import PayoutSettings
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.logging import get_logger
from parrain.members.service import MemberKeys
from parrain.payouts import service
from parrain.payouts.errors import (
    DuplicateBatch,
    InvalidPayoutBatch,
    PayPalError,
    PayPalValidationError,
)
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_wire import PayoutBatchRequest
from parrain.payouts.schemas import BatchStatus, RoundReport

_log = get_logger(__name__)

Step = Callable[[str], None]
Progress = Callable[[str, int, int], None]


def _nothing(*_: object) -> None:
    return None


def worker_name() -> str:
    """This worker's lease owner name: its process and a random part (no host name)."""
    return f"w{os.getpid()}-{new_id().hex[-8:]}"


def client_from_settings(settings: PayoutSettings, *, clock: Clock) -> PayPalClient | None:
    """PayPal's client as configured, or None when PayPal is not configured."""
    if (
        settings.paypal_base_url is None
        or settings.paypal_client_id is None
        or settings.paypal_client_secret is None
    ):
        return None
    return PayPalClient(
        base_url=settings.paypal_base_url,
        client_id=settings.paypal_client_id.get_secret_value(),
        client_secret=settings.paypal_client_secret.get_secret_value(),
        clock=clock,
        timeout=settings.request_timeout_seconds,
    )


_ITEM_FIELD = re.compile(r"items\[(\d+)\]\.(receiver|recipient_type)")


def _refused_items(error: ParrainError, request: PayoutBatchRequest) -> set[str]:
    """The ``sender_item_id`` of each item whose receiver PayPal's details name."""
    details = error.error_details if isinstance(error, PayPalValidationError) else ()
    out: set[str] = set()
    for detail in details:
        match = _ITEM_FIELD.fullmatch(detail.get("field", ""))
        if match and int(match.group(1)) < len(request.items):
            out.add(request.items[int(match.group(1))].sender_item_id)
    return out


def _keep_prepared(
    database: Database, claim: service.Claim, code: str, owner: str, report: RoundReport
) -> None:
    database.run(
        lambda session: service.record_attempt_failed(
            session=session, batch_id=claim.batch_id, code=code, owner=owner
        )
    )
    report.submit_failures += 1
    _log.warning("payout_batch_kept_prepared", batch_id=str(claim.batch_id), code=code)


def _submit(
    *,
    database: Database,
    clock: Clock,
    client: PayPalClient,
    keys: MemberKeys,
    claim: service.Claim,
    owner: str,
    report: RoundReport,
    step: Step,
) -> None:
    request = database.read(
        lambda session: service.build_request(session=session, batch_id=claim.batch_id, keys=keys)
    )
    # Denying voids the items: only safe when no earlier attempt can have reached PayPal.
    # After one, PayPal may hold the batch (its answer lost); it stays prepared, retried
    # under the same id, and reconciliation lists it until PayPal's id is known.
    first_attempt = claim.attempts == 1
    if not request.items and not first_attempt:
        _keep_prepared(database, claim, "no_receiver", owner, report)
        return
    if not request.items:  # every member lost their receiver since: nothing can be sent
        database.run(
            lambda session: service.deny_batch(
                session=session,
                batch_id=claim.batch_id,
                code="no_receiver",
                owner=owner,
                clock=clock,
            )
        )
        report.denied += 1
        return
    try:
        created = client.create_or_recover_batch(request)
    except (PayPalValidationError, InvalidPayoutBatch) as refused:
        # PayPal (or the client, before sending) refused the request: no batch exists.
        refused_code = refused.code
        if not first_attempt:
            _keep_prepared(database, claim, refused_code, owner, report)
            return
        refused_items = _refused_items(refused, request)
        database.run(
            lambda session: service.deny_batch(
                session=session,
                batch_id=claim.batch_id,
                code=refused_code,
                owner=owner,
                clock=clock,
                refused_sender_item_ids=refused_items,
            )
        )
        report.denied += 1
        _log.warning("payout_batch_denied", batch_id=str(claim.batch_id), code=refused.code)
        return
    except PayPalError as error:
        failed_code = error.code
        # Unknown outcome or a refusal worth retrying (rate limit, funds, a duplicate without
        # its link): the batch stays prepared and is sent again under the same id.
        database.run(
            lambda session: service.record_attempt_failed(
                session=session, batch_id=claim.batch_id, code=failed_code, owner=owner
            )
        )
        report.submit_failures += 1
        _log.warning(
            "payout_batch_send_failed",
            batch_id=str(claim.batch_id),
            code=error.code,
            duplicate_without_link=isinstance(error, DuplicateBatch),
        )
        return
    step("sent")
    database.run(
        lambda session: service.record_submitted(
            session=session, batch_id=claim.batch_id, created=created, owner=owner, clock=clock
        )
    )
    report.submitted += 1
    report.recovered += int(created.recovered)
    step("recorded")


def _poll(
    *,
    database: Database,
    clock: Clock,
    client: PayPalClient,
    claim: service.Claim,
    owner: str,
    report: RoundReport,
    step: Step,
) -> None:
    assert claim.payout_batch_id is not None  # a submitted batch has PayPal's id
    try:
        details = client.get_batch(claim.payout_batch_id)
    except PayPalError as error:
        poll_code = error.code
        database.run(
            lambda session: service.release(
                session=session, batch_id=claim.batch_id, owner=owner, code=poll_code
            )
        )
        _log.warning("payout_batch_poll_failed", batch_id=str(claim.batch_id), code=error.code)
        return
    step("polled")
    settled = database.run(
        lambda session: service.apply_batch(
            session=session, batch_id=claim.batch_id, details=details, owner=owner, clock=clock
        )
    )
    report.paid += settled.paid
    report.voided += settled.voided
    report.waiting += settled.waiting
    report.taken_back += settled.taken_back
    step("applied")


def _work_through(
    *,
    database: Database,
    clock: Clock,
    client: PayPalClient,
    keys: MemberKeys,
    status: BatchStatus,
    owner: str,
    lease: timedelta,
    report: RoundReport,
    step: Step,
    progress: Progress,
) -> None:
    """Claim the batches in ``status`` one at a time (each at most once this round) and send
    (prepared) or poll (submitted) each."""
    seen: set[UUID] = set()
    total = database.read(lambda session: service.count_batches(session=session, status=status))

    def claim_next(session: Session) -> service.Claim | None:
        return service.claim_batch(
            session=session, status=status, owner=owner, lease=lease, clock=clock, exclude=seen
        )

    while (claim := database.run(claim_next)) is not None:
        seen.add(claim.batch_id)
        step("claimed")
        if status is BatchStatus.PREPARED:
            _submit(
                database=database,
                clock=clock,
                client=client,
                keys=keys,
                claim=claim,
                owner=owner,
                report=report,
                step=step,
            )
        else:
            _poll(
                database=database,
                clock=clock,
                client=client,
                claim=claim,
                owner=owner,
                report=report,
                step=step,
            )
        what = "send" if status is BatchStatus.PREPARED else "poll"
        progress(what, len(seen), max(total, len(seen)))


def run_round(
    *,
    database: Database,
    clock: Clock,
    client: PayPalClient,
    keys: MemberKeys,
    settings: PayoutSettings,
    owner: str | None = None,
    step: Step = _nothing,
    progress: Progress = _nothing,
) -> RoundReport:
    """Prepare, send and poll once; return what happened. Safe to run in many processes."""
    owner = owner or worker_name()
    lease = timedelta(seconds=settings.lease_seconds)
    report = RoundReport()
    prepared = database.run(
        lambda session: service.prepare_batches(
            session=session,
            clock=clock,
            min_amount_minor=settings.min_amount_minor,
            max_batch_items=settings.max_batch_items,
        )
    )
    report.prepared_batches = len(prepared.batch_ids)
    report.prepared_items = prepared.items
    report.skipped_no_receiver = prepared.skipped_no_receiver
    report.below_minimum = prepared.below_minimum
    report.awaiting_receiver_fix = prepared.awaiting_receiver_fix
    step("prepared")
    for status in (BatchStatus.PREPARED, BatchStatus.SUBMITTED):
        _work_through(
            database=database,
            clock=clock,
            client=client,
            keys=keys,
            status=status,
            owner=owner,
            lease=lease,
            report=report,
            step=step,
            progress=progress,
        )
    report.in_flight_batches = database.read(lambda session: service.in_flight(session=session))
    if report.prepared_items or report.submitted or report.paid or report.voided:
        _log.info("payout_round", **report.model_dump())
    return report
