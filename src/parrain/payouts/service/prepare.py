"""Prepare: members' posted cash collected into batches, held in payout clearing."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.locks import lock_names
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.ledger import service as ledger
from parrain.ledger.errors import LedgerError
from parrain.ledger.postings import Phase, TransferRequest
from parrain.logging import get_logger
from parrain.members import service as members
from parrain.payouts import repository
from parrain.payouts.models import PayoutBatch, PayoutItem, PayoutItemPart
from parrain.payouts.providers.paypal_wire import (
    MAX_BATCH_ITEMS,
)
from parrain.payouts.schemas import BatchStatus, PrepareReport
from parrain.payouts.schemas import ItemStatus as OurItemStatus
from parrain.payouts.service.common import (
    CLEARING_KIND,
    RECEIVER_PROBLEM_REASONS,
    SETTLEMENT_KIND,
    SYSTEM_ACTOR,
    clearing_reference,
    hold_transfer_id,
    is_taken_back,
    sender_batch_id,
    settlement_reference,
    system_account,
)

_log = get_logger(__name__)


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
