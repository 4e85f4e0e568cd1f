"""Submit: claim a prepared batch, build PayPal's request, record the answer."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.kit.clock import Clock
from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.members import service as members
from parrain.members.service import MemberKeys
from parrain.payouts import repository
from parrain.payouts.providers.paypal_wire import (
    CreatedBatch,
    PayoutBatchRequest,
    PayoutItemRequest,
)
from parrain.payouts.schemas import BatchStatus
from parrain.payouts.schemas import ItemStatus as OurItemStatus
from parrain.payouts.service.common import EMAIL_SUBJECT, ITEM_NOTE, SYSTEM_ACTOR, recipient_type_of
from parrain.payouts.service.settle import LedgerWork, ask_for_attention, void_item


@dataclass(frozen=True, slots=True)
class Claim:
    """A batch leased to one worker until ``lease_until``."""

    batch_id: UUID
    sender_batch_id: str
    payout_batch_id: str | None
    attempts: int
    lease_until: datetime


def claim_batch(
    *,
    session: Session,
    status: BatchStatus,
    owner: str,
    lease: timedelta,
    clock: Clock,
    exclude: Collection[UUID] = (),
) -> Claim | None:
    """Lease the oldest batch in ``status`` that no live worker holds (see the repository)."""
    now = clock.now()
    batch = repository.claim_batch(
        session, status=status.value, now=now, lease_until=now + lease, owner=owner, exclude=exclude
    )
    if batch is None:
        return None
    if status is BatchStatus.PREPARED:
        batch.attempts += 1  # counted before the send: a crash during it still counts
    return Claim(
        batch_id=batch.id,
        sender_batch_id=batch.sender_batch_id,
        payout_batch_id=batch.payout_batch_id,
        attempts=batch.attempts,
        lease_until=now + lease,
    )


def build_request(*, session: Session, batch_id: UUID, keys: MemberKeys) -> PayoutBatchRequest:
    """The request for a prepared batch, receivers decrypted in memory only. An item whose
    member has no receiver any more (removed, erased) is left out: PayPal never sees it, and
    the poll voids it once PayPal's batch is complete."""
    batch = repository.get_batch(session, batch_id)
    if batch is None:
        raise LookupError(f"payout batch {batch_id} does not exist")
    requests: list[PayoutItemRequest] = []
    for item in repository.items_of(session, batch_id):
        if item.status != OurItemStatus.PENDING.value:
            continue
        row = members.get_row(session=session, member_id=item.member_id)
        if row.wrapped_key is None or row.paypal_receiver is None:
            continue
        receiver = members.to_read(row, keys).paypal_receiver
        if receiver is None:
            continue
        requests.append(
            PayoutItemRequest(
                receiver=Pii(receiver.reveal()),
                amount=Money(item.amount_minor, item.currency),
                sender_item_id=item.sender_item_id,
                recipient_type=recipient_type_of(receiver.reveal()),
                note=ITEM_NOTE,
            )
        )
    return PayoutBatchRequest(
        sender_batch_id=batch.sender_batch_id, items=requests, email_subject=EMAIL_SUBJECT
    )


def record_submitted(
    *, session: Session, batch_id: UUID, created: CreatedBatch, owner: str, clock: Clock
) -> None:
    """PayPal has the batch: keep its id; the batch is polled from now on."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if batch is None or batch.status != BatchStatus.PREPARED.value:
        return  # another worker recorded it (its lease had passed ours)
    batch.status = BatchStatus.SUBMITTED.value
    batch.payout_batch_id = created.payout_batch_id
    batch.paypal_status = created.batch_status.value
    batch.submitted_at = clock.now()
    batch.last_error = None
    repository.release_lease(session, batch, owner)
    session.flush()
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action="payout.batch_submitted",
        subject=f"payout_batch:{batch_id}",
        details={"payout_batch_id": created.payout_batch_id, "recovered": created.recovered},
        clock=clock,
    )


def record_attempt_failed(*, session: Session, batch_id: UUID, code: str, owner: str) -> None:
    """The send did not get through (or its answer is unknown): the batch stays prepared and
    is sent again, under the same ``sender_batch_id``, by whoever claims it next."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if batch is None:
        return
    batch.last_error = code[:64]
    repository.release_lease(session, batch, owner)
    session.flush()


def deny_batch(
    *,
    session: Session,
    batch_id: UUID,
    code: str,
    owner: str,
    clock: Clock,
    refused_sender_item_ids: Collection[str] = (),
) -> int:
    """PayPal refused the request itself (nothing was created): void every item. The items
    whose receiver PayPal named (``refused_sender_item_ids``) are receiver problems: their
    members are asked to fix it and are not sent again before they do; the others are paid
    in a later batch."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if batch is None or batch.status != BatchStatus.PREPARED.value:
        return 0
    voided = 0
    items = repository.items_of(session, batch_id)
    parts = repository.parts_of(session, [item.id for item in items])
    work = LedgerWork(session, clock)
    for item in items:
        if item.status != OurItemStatus.PENDING.value:
            continue
        refused = item.sender_item_id in refused_sender_item_ids
        reason = "receiver_refused" if refused else "batch_refused"
        void_item(session, item, parts[item.id], reason=reason, clock=clock, work=work)
        if refused:
            ask_for_attention(session, item, "RECEIVER_REFUSED", clock)
        voided += 1
    work.book()
    batch.status = BatchStatus.DENIED.value
    batch.last_error = code[:64]
    batch.settled_at = clock.now()
    repository.release_lease(session, batch, owner)
    session.flush()
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action="payout.batch_denied",
        subject=f"payout_batch:{batch_id}",
        details={"code": code, "voided": voided},
        clock=clock,
    )
    return voided
