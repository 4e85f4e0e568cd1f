"""Settle: apply what PayPal says of a batch or an item: post, void or take back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.errors import LedgerError
from parrain.ledger.postings import Phase, TransferRequest
from parrain.logging import get_logger
from parrain.outbox import service as outbox
from parrain.payouts import repository
from parrain.payouts.models import PayoutBatch, PayoutItem, PayoutItemPart
from parrain.payouts.providers.paypal_wire import (
    BatchDetails,
    ItemStatus,
    PayoutItemResult,
)
from parrain.payouts.providers.paypal_wire import BatchStatus as PayPalBatchStatus
from parrain.payouts.schemas import BatchStatus, SettleReport
from parrain.payouts.schemas import ItemStatus as OurItemStatus
from parrain.payouts.service.common import (
    ATTENTION_TOPIC,
    FINAL_BATCH,
    RECEIVER_PROBLEMS,
    SYSTEM_ACTOR,
    TAKING_BACK,
    UNCLAIMED_VOID_AFTER,
    VOIDING,
    clearing_reference,
    is_taken_back,
    reversal_transfer_id,
    settle_transfer_id,
    settlement_reference,
)

_log = get_logger(__name__)


class LedgerWork:
    """The ledger transfers one settlement round books: a linked chain per item, all booked
    by :meth:`book` with one ledger call per hundred transfers (``ledger.create_chains``),
    in the order the items were settled, instead of one call per item. A chain that fails
    raises its error, as ``create_linked`` would: the caller's transaction then writes
    nothing. Transfer ids are derived, so a round repeated after a crash books nothing
    twice."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock
        self._chains: list[list[TransferRequest]] = []
        self._accounts: dict[str, UUID] = {}

    def account(self, reference: str) -> UUID:
        """A payout account (created with the first batch of its currency)."""
        found = self._accounts.get(reference)
        if found is None:
            account = ledger.find_account(session=self._session, reference=reference)
            assert account is not None  # created with the batch
            found = self._accounts[reference] = account.id
        return found

    def add(self, chain: list[TransferRequest]) -> None:
        if chain:
            self._chains.append(chain)

    def book(self) -> None:
        chains, self._chains = self._chains, []
        if not chains:
            return
        for result in ledger.create_chains(session=self._session, chains=chains, clock=self._clock):
            if isinstance(result, LedgerError):
                raise result


def _post_item(
    work: LedgerWork, item: PayoutItem, parts: Iterable[PayoutItemPart], clock: Clock
) -> None:
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
            debit_account_id=work.account(clearing_reference(item.currency)),
            credit_account_id=work.account(settlement_reference(item.currency)),
            amount=item.amount_minor,
            currency=item.currency,
        )
    )
    work.add(requests)
    item.status, item.settled_at = OurItemStatus.PAID.value, clock.now()


def void_item(
    session: Session,
    item: PayoutItem,
    parts: Iterable[PayoutItemPart],
    *,
    reason: str,
    clock: Clock,
    work: LedgerWork | None = None,
) -> None:
    """Void the item's holds and free its parts for another item. With ``work`` the voids
    are booked with the round's other transfers (:meth:`LedgerWork.book`), else at once."""
    alone = work is None
    if work is None:
        work = LedgerWork(session, clock)
    work.add(
        [
            TransferRequest(
                id=derived_id("void", part.transfer_id),
                kind="payout_void",
                phase=Phase.VOID_PENDING,
                pending_id=part.transfer_id,
            )
            for part in parts
        ]
    )
    if alone:
        work.book()
    item.status, item.settled_at = OurItemStatus.VOIDED.value, clock.now()
    item.void_reason = reason
    repository.close_parts(session, item.id)


def ask_for_attention(session: Session, item: PayoutItem, status: str, clock: Clock) -> None:
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
    work: LedgerWork,
    item: PayoutItem,
    parts: Iterable[PayoutItemPart],
    status: ItemStatus,
    clock: Clock,
) -> None:
    """A paid item's money came back (REFUNDED, REVERSED): each part's amount returns from
    the settlement account to its campaign's cash payable, the parts are payable again, the
    member is asked to check their receiver, and it is audited. Transfer ids are derived
    from the item and the part: a replay books nothing twice."""
    settlement = work.account(settlement_reference(item.currency))
    work.add(
        [
            TransferRequest(
                id=reversal_transfer_id(item.id, part.reward_part_id),
                kind="payout_reversal",
                debit_account_id=settlement,
                credit_account_id=part.cash_payable_account_id,
                amount=part.amount_minor,
                currency=item.currency,
            )
            for part in parts
        ]
    )
    item.void_reason = status.value.lower()
    repository.close_parts(session, item.id)
    ask_for_attention(session, item, status.value, clock)
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
    work: LedgerWork,
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
        _take_back(session, work, item, parts, status, clock)
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
        _post_item(work, item, parts, clock)
        return "paid"
    if status in VOIDING or unclaimed_too_long:
        void_item(session, item, parts, reason=status.value.lower(), clock=clock, work=work)
        if status in RECEIVER_PROBLEMS:
            ask_for_attention(session, item, status.value, clock)
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
    complete = details.header.batch_status in FINAL_BATCH or (
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
    work = LedgerWork(session, clock)
    for item in items:
        result = by_sender.get(item.sender_item_id)
        if result is not None:
            outcome = _apply_result(
                session, work, batch, item, parts[item.id], result, now=now, clock=clock
            )
            counts[outcome] += 1
            continue
        if item.status != OurItemStatus.PENDING.value:
            continue
        if denied:  # PayPal refused the whole batch: nothing of it was paid
            void_item(session, item, parts[item.id], reason="batch_denied", clock=clock, work=work)
            counts["voided"] += 1
        elif complete:  # PayPal's batch is whole and this item is not in it: never sent
            void_item(session, item, parts[item.id], reason="not_sent", clock=clock, work=work)
            ask_for_attention(session, item, "NOT_SENT", clock)
            counts["voided"] += 1
        else:
            counts["waiting"] += 1
    work.book()
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
    work = LedgerWork(session, clock)
    outcome = _apply_result(session, work, batch, item, parts, result, now=now, clock=clock)
    work.book()
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
