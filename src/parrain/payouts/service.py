"""Payout operations on our side: collect members' posted cash into batches, hold it in the
payout clearing account, record what PayPal said, and post or void accordingly. Callers
pass a session; nothing here commits and nothing here talks to the network (the worker in
:mod:`parrain.payouts.worker` does, between transactions). See ADR 18.

Money moves (ledger accounts named by reference, one per currency):

* prepare: each reward part's amount, campaign ``cash_payable`` → ``payouts:clearing:<cur>``,
  **pending**, id ``derived_id("payout_hold", item, part)``; one linked chain per item;
* SUCCESS: the item's holds are **posted** and its total moves clearing →
  ``payouts:paypal_settlement:<cur>`` (id ``derived_id("payout_settle", item)``), linked;
* FAILED, RETURNED, BLOCKED, REFUNDED, REVERSED (before SUCCESS), UNCLAIMED after 32 days,
  or an item PayPal never received: the holds are **voided**, the cash is the member's again
  and its parts are payable by a later item;
* REFUNDED or REVERSED *after* SUCCESS (the money came back from the receiver): each part's
  amount moves ``payouts:paypal_settlement:<cur>`` → its campaign's ``cash_payable`` (id
  ``derived_id("payout_reversal", item, part)``, linked), the item stays ``paid`` with
  ``void_reason`` ``refunded``/``reversed`` (its money came back), its parts are payable by a
  later item, and the member is asked to check their receiver (ADR 19).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.locks import lock_names
from parrain.errors import NotFound
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id, new_id
from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.ledger import service as ledger
from parrain.ledger.errors import LedgerError
from parrain.ledger.postings import Account, Phase, TransferRequest
from parrain.ledger.schemas import AccountCreate
from parrain.logging import get_logger
from parrain.members import service as members
from parrain.members.service import MemberKeys
from parrain.outbox import service as outbox
from parrain.payouts import repository
from parrain.payouts.models import PayoutBatch, PayoutItem, PayoutItemPart
from parrain.payouts.providers.paypal_wire import (
    MAX_BATCH_ITEMS,
    BatchDetails,
    CreatedBatch,
    ItemStatus,
    PayoutBatchRequest,
    PayoutItemRequest,
    PayoutItemResult,
    RecipientType,
)
from parrain.payouts.providers.paypal_wire import BatchStatus as PayPalBatchStatus
from parrain.payouts.schemas import BatchStatus, PrepareReport, SettleReport
from parrain.payouts.schemas import ItemStatus as OurItemStatus

_log = get_logger(__name__)

SYSTEM_ACTOR = "system:payouts"
CLEARING_KIND = "payout_clearing"
SETTLEMENT_KIND = "paypal_settlement"
ATTENTION_TOPIC = "payout.receiver_needs_attention"
#: PayPal turns an unclaimed payout into RETURNED after 30 days (and we void it then). Should
#: it still say UNCLAIMED later, we void it ourselves after a margin: voiding while the member
#: can still claim it could pay twice.
UNCLAIMED_VOID_AFTER = timedelta(days=32)
ITEM_NOTE = "Your Cash Rewards prize"
EMAIL_SUBJECT = "You have a Cash Rewards payout"

#: Outcomes that give the money back to the member (if the item was not paid yet).
VOIDING = frozenset(
    {
        ItemStatus.FAILED,
        ItemStatus.RETURNED,
        ItemStatus.BLOCKED,
        ItemStatus.REFUNDED,
        ItemStatus.REVERSED,
    }
)
#: Outcomes that bring a paid item's money back from the receiver.
TAKING_BACK = frozenset({ItemStatus.REFUNDED, ItemStatus.REVERSED})
#: ``void_reason`` of a paid item whose money came back.
TAKEN_BACK_REASONS = frozenset(status.value.lower() for status in TAKING_BACK)
#: Outcomes after which the member should check their PayPal receiver.
RECEIVER_PROBLEMS = frozenset(
    {ItemStatus.FAILED, ItemStatus.RETURNED, ItemStatus.BLOCKED, ItemStatus.UNCLAIMED}
)
RECEIVER_PROBLEM_REASONS = frozenset(
    {status.value.lower() for status in RECEIVER_PROBLEMS} | {"not_sent", "receiver_refused"}
)
_FINAL_BATCH = frozenset(
    {PayPalBatchStatus.SUCCESS, PayPalBatchStatus.DENIED, PayPalBatchStatus.CANCELED}
)
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{5,}")


def clearing_reference(currency: str) -> str:
    return f"payouts:clearing:{currency}"


def settlement_reference(currency: str) -> str:
    return f"payouts:paypal_settlement:{currency}"


def sender_batch_id(batch_id: UUID) -> str:
    """PayPal's only deduplication key: derived from our batch, never invented per attempt."""
    return f"parrain-{batch_id.hex}"


def hold_transfer_id(item_id: UUID, reward_part_id: UUID) -> UUID:
    return derived_id("payout_hold", item_id, reward_part_id)


def settle_transfer_id(item_id: UUID) -> UUID:
    return derived_id("payout_settle", item_id)


def reversal_transfer_id(item_id: UUID, reward_part_id: UUID) -> UUID:
    """The transfer that brings one part of a paid item back (REFUNDED, REVERSED)."""
    return derived_id("payout_reversal", item_id, reward_part_id)


def is_taken_back(item: PayoutItem) -> bool:
    """A paid item whose money PayPal brought back after the SUCCESS."""
    return item.status == OurItemStatus.PAID.value and item.void_reason in TAKEN_BACK_REASONS


def recipient_type_of(receiver: str) -> RecipientType:
    if "@" in receiver:
        return RecipientType.EMAIL
    if _PHONE.fullmatch(receiver.strip()):
        return RecipientType.PHONE
    return RecipientType.PAYPAL_ID


def system_account(
    *, session: Session, reference: str, kind: str, currency: str, clock: Clock
) -> Account:
    """The account named ``reference``, created on first use."""
    found = ledger.find_account(session=session, reference=reference)
    if found is not None:
        return found
    return ledger.create_account(
        session=session,
        account_in=AccountCreate(currency=currency, kind=kind, reference=reference),
        clock=clock,
    )


# --- prepare --------------------------------------------------------------------------------


def _receiver_seal_hash(session: Session, member_id: UUID) -> str | None:
    """The hash of the member's sealed receiver, None without one or once erased. Read
    sealed: nothing is decrypted."""
    row = members.get_row(session=session, member_id=member_id)
    if row.wrapped_key is None or row.paypal_receiver is None:
        return None
    return hashlib.sha256(row.paypal_receiver).hexdigest()


def _awaits_fix(session: Session, member_id: UUID, currency: str, seal_hash: str) -> bool:
    """Their last payout came back for a receiver problem (or was taken back after it was
    paid) and the receiver was not set again since: paying it again would only come back."""
    last = repository.latest_item_of(session, member_id, currency)
    if last is None or last.receiver_seal_hash != seal_hash:
        return False
    receiver_problem = (
        last.status == OurItemStatus.VOIDED.value and last.void_reason in RECEIVER_PROBLEM_REASONS
    )
    return receiver_problem or is_taken_back(last)


def prepare_batches(
    *,
    session: Session,
    clock: Clock,
    min_amount_minor: int,
    max_batch_items: int = MAX_BATCH_ITEMS,
) -> PrepareReport:
    """Collect every member's posted, unpaid cash (per currency, across campaigns) of at
    least ``min_amount_minor`` into new ``prepared`` batches, holding each part's amount in
    the clearing account with a pending transfer. Members without a PayPal receiver (or
    erased) are skipped and counted; so are amounts below the minimum."""
    lock_names(session, ["payouts:prepare"])  # one collector at a time on PostgreSQL
    now = clock.now()
    owed: dict[tuple[UUID, str], list[repository.PayablePart]] = defaultdict(list)
    for part in repository.payable_parts(session):
        owed[(part.member_id, part.currency)].append(part)
    skipped = below = refused = 0
    by_currency: dict[str, list[list[repository.PayablePart]]] = defaultdict(list)
    seals: dict[UUID, str | None] = {}
    awaiting = 0
    for (member_id, currency), parts in owed.items():
        if sum(p.amount_minor for p in parts) < min_amount_minor:
            below += 1
            continue
        if member_id not in seals:
            seals[member_id] = _receiver_seal_hash(session, member_id)
        seal_hash = seals[member_id]
        if seal_hash is None:
            skipped += 1
            continue
        if _awaits_fix(session, member_id, currency, seal_hash):
            awaiting += 1
            continue
        by_currency[currency].append(parts)
    batch_ids: list[UUID] = []
    item_total = 0
    size = max(1, min(max_batch_items, MAX_BATCH_ITEMS))
    for currency in sorted(by_currency):
        clearing = system_account(
            session=session,
            reference=clearing_reference(currency),
            kind=CLEARING_KIND,
            currency=currency,
            clock=clock,
        )
        system_account(
            session=session,
            reference=settlement_reference(currency),
            kind=SETTLEMENT_KIND,
            currency=currency,
            clock=clock,
        )
        groups = by_currency[currency]
        for start in range(0, len(groups), size):
            chunk = groups[start : start + size]
            item_ids = [new_id() for _ in chunk]
            chains = [
                [
                    TransferRequest(
                        id=hold_transfer_id(item_id, part.reward_part_id),
                        kind="payout_hold",
                        debit_account_id=part.cash_payable_account_id,
                        credit_account_id=clearing.id,
                        amount=part.amount_minor,
                        currency=currency,
                        phase=Phase.PENDING,
                    )
                    for part in parts
                ]
                for item_id, parts in zip(item_ids, chunk, strict=True)
            ]
            results = ledger.create_chains(session=session, chains=chains, clock=clock)
            batch_id = new_id()
            items: list[PayoutItem] = []
            item_parts: list[PayoutItemPart] = []
            for item_id, parts, result in zip(item_ids, chunk, results, strict=True):
                if isinstance(result, LedgerError):
                    refused += 1
                    _log.warning("payout_item_refused_by_ledger", code=result.code)
                    continue
                items.append(
                    PayoutItem(
                        id=item_id,
                        batch_id=batch_id,
                        member_id=parts[0].member_id,
                        currency=currency,
                        amount_minor=sum(p.amount_minor for p in parts),
                        sender_item_id=item_id.hex,
                        status=OurItemStatus.PENDING.value,
                        receiver_seal_hash=seals[parts[0].member_id] or "",
                        created_at=now,
                    )
                )
                item_parts.extend(
                    PayoutItemPart(
                        transfer_id=hold_transfer_id(item_id, part.reward_part_id),
                        item_id=item_id,
                        reward_part_id=part.reward_part_id,
                        open_part_id=part.reward_part_id,
                        campaign_id=part.campaign_id,
                        cash_payable_account_id=part.cash_payable_account_id,
                        amount_minor=part.amount_minor,
                    )
                    for part in parts
                )
            if not items:
                continue
            batch = PayoutBatch(
                id=batch_id,
                sender_batch_id=sender_batch_id(batch_id),
                currency=currency,
                status=BatchStatus.PREPARED.value,
                item_count=len(items),
                total_minor=sum(item.amount_minor for item in items),
                attempts=0,
                created_at=now,
            )
            repository.add_all(session, [batch])
            repository.add_all(session, items)
            repository.add_all(session, item_parts)
            audit.record(
                session=session,
                actor=SYSTEM_ACTOR,
                action="payout.batch_prepared",
                subject=f"payout_batch:{batch_id}",
                details={
                    "currency": currency,
                    "items": len(items),
                    "total_minor": batch.total_minor,
                },
                clock=clock,
            )
            batch_ids.append(batch_id)
            item_total += len(items)
    return PrepareReport(
        batch_ids=batch_ids,
        items=item_total,
        skipped_no_receiver=skipped,
        awaiting_receiver_fix=awaiting,
        below_minimum=below,
        refused_by_ledger=refused,
    )


# --- submit ---------------------------------------------------------------------------------


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
    for item in items:
        if item.status != OurItemStatus.PENDING.value:
            continue
        if item.sender_item_id in refused_sender_item_ids:
            _void_item(session, item, parts[item.id], reason="receiver_refused", clock=clock)
            _ask_for_attention(session, item, "RECEIVER_REFUSED", clock)
        else:
            _void_item(session, item, parts[item.id], reason="batch_refused", clock=clock)
        voided += 1
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


# --- settle ---------------------------------------------------------------------------------


def _post_item(
    session: Session, item: PayoutItem, parts: Iterable[PayoutItemPart], clock: Clock
) -> None:
    clearing = ledger.find_account(session=session, reference=clearing_reference(item.currency))
    settlement = ledger.find_account(session=session, reference=settlement_reference(item.currency))
    # Both are created with the batch.
    assert clearing is not None
    assert settlement is not None
    requests = [
        TransferRequest(
            id=derived_id("post", part.transfer_id),
            kind="payout_post",
            phase=Phase.POST_PENDING,
            pending_id=part.transfer_id,
        )
        for part in parts
    ]
    requests.append(
        TransferRequest(
            id=settle_transfer_id(item.id),
            kind="payout_settle",
            debit_account_id=clearing.id,
            credit_account_id=settlement.id,
            amount=item.amount_minor,
            currency=item.currency,
        )
    )
    ledger.create_linked(session=session, transfers=requests, clock=clock)
    item.status, item.settled_at = OurItemStatus.PAID.value, clock.now()


def _void_item(
    session: Session,
    item: PayoutItem,
    parts: Iterable[PayoutItemPart],
    *,
    reason: str,
    clock: Clock,
) -> None:
    requests = [
        TransferRequest(
            id=derived_id("void", part.transfer_id),
            kind="payout_void",
            phase=Phase.VOID_PENDING,
            pending_id=part.transfer_id,
        )
        for part in parts
    ]
    if requests:
        ledger.create_linked(session=session, transfers=requests, clock=clock)
    item.status, item.settled_at = OurItemStatus.VOIDED.value, clock.now()
    item.void_reason = reason
    repository.close_parts(session, item.id)


def _ask_for_attention(session: Session, item: PayoutItem, status: str, clock: Clock) -> None:
    outbox.enqueue(
        session=session,
        topic=ATTENTION_TOPIC,
        payload={
            "member_id": str(item.member_id),
            "payout_item_id": str(item.id),
            "status": status,
            "currency": item.currency,
        },
        clock=clock,
    )


def _take_back(
    session: Session,
    item: PayoutItem,
    parts: Iterable[PayoutItemPart],
    status: ItemStatus,
    clock: Clock,
) -> None:
    """A paid item's money came back (REFUNDED, REVERSED): each part's amount returns from
    the settlement account to its campaign's cash payable, the parts are payable again, the
    member is asked to check their receiver, and it is audited. Transfer ids are derived
    from the item and the part: a replay books nothing twice."""
    settlement = ledger.find_account(session=session, reference=settlement_reference(item.currency))
    assert settlement is not None  # created with the batch
    ledger.create_linked(
        session=session,
        transfers=[
            TransferRequest(
                id=reversal_transfer_id(item.id, part.reward_part_id),
                kind="payout_reversal",
                debit_account_id=settlement.id,
                credit_account_id=part.cash_payable_account_id,
                amount=part.amount_minor,
                currency=item.currency,
            )
            for part in parts
        ],
        clock=clock,
    )
    item.void_reason = status.value.lower()
    repository.close_parts(session, item.id)
    _ask_for_attention(session, item, status.value, clock)
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action="payout.item_taken_back",
        subject=f"payout_item:{item.id}",
        details={
            "status": status.value,
            "amount_minor": item.amount_minor,
            "currency": item.currency,
            "batch_id": str(item.batch_id),
        },
        clock=clock,
    )


def _apply_result(
    session: Session,
    batch: PayoutBatch,
    item: PayoutItem,
    parts: list[PayoutItemPart],
    result: PayoutItemResult,
    *,
    now: datetime,
    clock: Clock,
) -> str:
    """One item as PayPal's answer says: ``paid``, ``voided``, ``taken_back``, ``waiting``
    (still open at PayPal, or an amount to check) or ``""`` (nothing to do)."""
    status = result.transaction_status
    amount_agrees = result.amount == Money(item.amount_minor, item.currency)
    if item.status == OurItemStatus.PAID.value:
        if status not in TAKING_BACK or is_taken_back(item):
            return ""  # a stale or repeated answer: a paid item only ever comes back once
        if not amount_agrees:
            _log.error("payout_amount_mismatch", payout_item_id=str(item.id))
            return ""  # an operator decides; reconciliation lists it
        item.paypal_status = status.value
        _take_back(session, item, parts, status, clock)
        return "taken_back"
    if item.status != OurItemStatus.PENDING.value:
        return ""
    item.paypal_status = status.value
    item.payout_item_id = result.payout_item_id
    item.transaction_id = result.transaction_id
    item.error_name = result.error_name[:64] if result.error_name else None
    if not amount_agrees:
        _log.error("payout_amount_mismatch", payout_item_id=str(item.id))
        return "waiting"  # an operator decides; reconciliation lists it
    unclaimed_too_long = (
        status is ItemStatus.UNCLAIMED
        and batch.submitted_at is not None
        and now >= batch.submitted_at + UNCLAIMED_VOID_AFTER
    )
    if status is ItemStatus.SUCCESS:
        _post_item(session, item, parts, clock)
        return "paid"
    if status in VOIDING or unclaimed_too_long:
        _void_item(session, item, parts, reason=status.value.lower(), clock=clock)
        if status in RECEIVER_PROBLEMS:
            _ask_for_attention(session, item, status.value, clock)
        return "voided"
    return "waiting"


def _mark_settled(session: Session, batch: PayoutBatch, now: datetime, clock: Clock) -> None:
    batch.status, batch.settled_at = BatchStatus.SETTLED.value, now
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action="payout.batch_settled",
        subject=f"payout_batch:{batch.id}",
        details={"payout_batch_id": batch.payout_batch_id},
        clock=clock,
    )


_APPLIED = frozenset({BatchStatus.SUBMITTED.value, BatchStatus.SETTLED.value})


def apply_batch(
    *, session: Session, batch_id: UUID, details: BatchDetails, owner: str, clock: Clock
) -> SettleReport:
    """Settle each pending item as PayPal's batch says; the batch is ``settled`` once no
    item is pending. A paid item PayPal now says REFUNDED or REVERSED is taken back (a
    settled batch too: webhooks re-read those). Items already settled are left alone, so a
    repeated poll is harmless."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if batch is None or batch.status not in _APPLIED:
        return SettleReport()
    now = clock.now()
    by_sender: Mapping[str | None, PayoutItemResult] = {
        result.sender_item_id: result for result in details.items
    }
    complete = details.header.batch_status in _FINAL_BATCH or (
        details.header.batch_status is not PayPalBatchStatus.PENDING and details.is_settled
    )
    denied = details.header.batch_status in (PayPalBatchStatus.DENIED, PayPalBatchStatus.CANCELED)
    items = [
        i
        for i in repository.items_of(session, batch_id)
        if i.status in (OurItemStatus.PENDING.value, OurItemStatus.PAID.value)
    ]
    parts = repository.parts_of(session, [item.id for item in items])
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        result = by_sender.get(item.sender_item_id)
        if result is not None:
            outcome = _apply_result(
                session, batch, item, parts[item.id], result, now=now, clock=clock
            )
            counts[outcome] += 1
            continue
        if item.status != OurItemStatus.PENDING.value:
            continue
        if denied:  # PayPal refused the whole batch: nothing of it was paid
            _void_item(session, item, parts[item.id], reason="batch_denied", clock=clock)
            counts["voided"] += 1
        elif complete:  # PayPal's batch is whole and this item is not in it: never sent
            _void_item(session, item, parts[item.id], reason="not_sent", clock=clock)
            _ask_for_attention(session, item, "NOT_SENT", clock)
            counts["voided"] += 1
        else:
            counts["waiting"] += 1
    batch.paypal_status = details.header.batch_status.value
    settled = counts["waiting"] == 0
    if settled and batch.status == BatchStatus.SUBMITTED.value:
        _mark_settled(session, batch, now, clock)
    repository.release_lease(session, batch, owner)
    session.flush()
    return SettleReport(
        paid=counts["paid"],
        voided=counts["voided"],
        waiting=counts["waiting"],
        taken_back=counts["taken_back"],
        batch_settled=settled,
    )


def apply_item(
    *, session: Session, batch_id: UUID, result: PayoutItemResult, clock: Clock
) -> SettleReport:
    """One item as PayPal's answer for it says (a webhook's fresh read of that item): the
    answer must be about an item of this batch at PayPal; the batch is ``settled`` once no
    item is pending."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if (
        batch is None
        or batch.status not in _APPLIED
        or result.payout_batch_id != batch.payout_batch_id
        or result.sender_item_id is None
    ):
        return SettleReport()
    item = repository.get_item_by_sender_item_id(session, result.sender_item_id)
    if item is None or item.batch_id != batch.id:
        return SettleReport()
    now = clock.now()
    parts = repository.parts_of(session, [item.id])[item.id]
    outcome = _apply_result(session, batch, item, parts, result, now=now, clock=clock)
    session.flush()
    settled = batch.status == BatchStatus.SETTLED.value
    if batch.status == BatchStatus.SUBMITTED.value and not repository.pending_items_count(
        session, batch.id
    ):
        _mark_settled(session, batch, now, clock)
        session.flush()
        settled = True
    return SettleReport(
        paid=int(outcome == "paid"),
        voided=int(outcome == "voided"),
        waiting=int(outcome == "waiting"),
        taken_back=int(outcome == "taken_back"),
        batch_settled=settled,
    )


def release(*, session: Session, batch_id: UUID, owner: str, code: str | None = None) -> None:
    """Give a leased batch back (a poll that failed): the next round takes it again."""
    batch = repository.get_batch(session, batch_id, for_update=True)
    if batch is None:
        return
    if code is not None:
        batch.last_error = code[:64]
    repository.release_lease(session, batch, owner)
    session.flush()


def items_of_member(*, session: Session, member_id: UUID) -> list[PayoutItem]:
    """Every payment of the member's cash to PayPal, oldest first (for their own pages)."""
    return repository.items_of_member(session, member_id)


def in_flight(*, session: Session) -> int:
    """Batches not settled yet (prepared or submitted)."""
    return len(
        repository.list_batches(
            session, statuses=[BatchStatus.PREPARED.value, BatchStatus.SUBMITTED.value]
        )
    )


def count_batches(*, session: Session, status: BatchStatus) -> int:
    return len(repository.list_batches(session, statuses=[status.value]))


@dataclass(frozen=True, slots=True)
class StateTotal:
    """How many items of a batch are in one state, and their amount (minor units)."""

    items: int = 0
    amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """A batch as the console lists it: the batch and its items' totals per state
    (``pending``, ``paid``, ``voided``, ``taken_back``: paid, then brought back, ADR 19)."""

    batch: PayoutBatch
    states: Mapping[str, StateTotal]

    def total(self, state: str) -> StateTotal:
        return self.states.get(state, StateTotal())


def batch_summaries(*, session: Session) -> list[BatchSummary]:
    """Every batch, newest first, with its items' counts and amounts per state."""
    found: dict[UUID, dict[str, StateTotal]] = defaultdict(dict)
    for batch_id, status, void_reason, count, amount in repository.item_totals(session):
        taken_back = status == OurItemStatus.PAID.value and void_reason in TAKEN_BACK_REASONS
        state = "taken_back" if taken_back else status
        known = found[batch_id].get(state, StateTotal())
        found[batch_id][state] = StateTotal(known.items + count, known.amount_minor + amount)
    batches = repository.list_batches(session)
    batches.sort(key=lambda batch: (batch.created_at, batch.id), reverse=True)
    return [BatchSummary(batch=batch, states=dict(found.get(batch.id, {}))) for batch in batches]


def batch_with_items(*, session: Session, batch_id: UUID) -> tuple[PayoutBatch, list[PayoutItem]]:
    """A batch and its items; :class:`~parrain.errors.NotFound` (404) when there is none."""
    batch = repository.get_batch(session, batch_id)
    if batch is None:
        raise NotFound(f"no payout batch {batch_id}", batch_id=str(batch_id))
    return batch, repository.items_of(session, batch_id)
