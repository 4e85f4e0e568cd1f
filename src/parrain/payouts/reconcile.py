"""Reconciliation: our payout tables, our ledger and PayPal's batches, compared.

Every difference is listed (a code, a sentence, the batch and item ids); a clean run gives
totals per currency. Reading PayPal goes through the client (one batch at a time, all its
pages). Nothing is written. See ADR 18 for what each code means.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import PendingStatus
from parrain.payouts import repository, service
from parrain.payouts.errors import PayPalError, PayPalNotFound
from parrain.payouts.models import PayoutBatch, PayoutItem, PayoutItemPart
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_wire import BatchDetails, ItemStatus
from parrain.payouts.schemas import (
    BatchStatus,
    CurrencyTotals,
    Difference,
    ReconcileReport,
)

#: What PayPal may say of an item in each of our states ("taken_back": paid, then its money
#: came back, ADR 19).
_AGREES: dict[str, frozenset[ItemStatus]] = {
    "paid": frozenset({ItemStatus.SUCCESS}),
    "taken_back": service.TAKING_BACK,
    "pending": frozenset({ItemStatus.PENDING, ItemStatus.ONHOLD, ItemStatus.UNCLAIMED}),
    "voided": frozenset(service.VOIDING | {ItemStatus.UNCLAIMED}),
}


def _state(item: PayoutItem) -> str:
    return "taken_back" if service.is_taken_back(item) else item.status


_Loaded = tuple[list[PayoutBatch], dict[UUID, list[PayoutItem]], dict[UUID, list[PayoutItemPart]]]


def _load(session: Session) -> _Loaded:
    batches = repository.list_batches(session)
    items = {batch.id: repository.items_of(session, batch.id) for batch in batches}
    parts = repository.parts_of(session, [i.id for each in items.values() for i in each])
    return batches, items, parts


def _ledger_differences(
    session: Session, item: PayoutItem, parts: list[PayoutItemPart]
) -> list[Difference]:
    """Each item's holds must be pending while it is, posted once paid, voided once voided;
    a paid item has its settlement transfer."""
    expected = {
        "pending": PendingStatus.PENDING,
        "paid": PendingStatus.POSTED,
        "voided": PendingStatus.VOIDED,
    }[item.status]
    out: list[Difference] = []
    holds = ledger.get_transfers(session=session, transfer_ids=[p.transfer_id for p in parts])
    if sum(p.amount_minor for p in parts) != item.amount_minor:
        out.append(
            Difference(
                code="item_parts_mismatch",
                message=f"item {item.id}: its parts do not add up to {item.amount_minor}",
                batch_id=item.batch_id,
                item_id=item.id,
            )
        )
    for part in parts:
        hold = holds.get(part.transfer_id)
        if hold is None:
            out.append(
                Difference(
                    code="hold_missing",
                    message=f"item {item.id}: no ledger hold {part.transfer_id}",
                    batch_id=item.batch_id,
                    item_id=item.id,
                )
            )
        elif hold.status is not expected or hold.amount != part.amount_minor:
            out.append(
                Difference(
                    code="hold_status_mismatch",
                    message=(
                        f"item {item.id} is {item.status} but its hold {hold.id} is "
                        f"{hold.status} ({hold.amount})"
                    ),
                    batch_id=item.batch_id,
                    item_id=item.id,
                )
            )
    settled = ledger.get_transfer(session=session, transfer_id=service.settle_transfer_id(item.id))
    if (item.status == "paid") != (settled is not None):
        out.append(
            Difference(
                code="settlement_mismatch",
                message=f"item {item.id} is {item.status} and its settlement transfer "
                f"{'is missing' if settled is None else 'exists'}",
                batch_id=item.batch_id,
                item_id=item.id,
            )
        )
    out.extend(_reversal_differences(session, item, parts))
    return out


def _reversal_differences(
    session: Session, item: PayoutItem, parts: list[PayoutItemPart]
) -> list[Difference]:
    """A taken-back item has one reversal per part, settlement → that part's cash payable,
    of its amount; any other item has none."""
    ids = {
        part.transfer_id: service.reversal_transfer_id(item.id, part.reward_part_id)
        for part in parts
    }
    found = ledger.get_transfers(session=session, transfer_ids=list(ids.values()))
    taken_back = service.is_taken_back(item)
    settlement = ledger.find_account(
        session=session, reference=service.settlement_reference(item.currency)
    )
    for part in parts:
        reversal = found.get(ids[part.transfer_id])
        if taken_back:
            right = (
                reversal is not None
                and settlement is not None
                and reversal.debit_account_id == settlement.id
                and reversal.credit_account_id == part.cash_payable_account_id
                and reversal.amount == part.amount_minor
            )
        else:
            right = reversal is None
        if not right:
            return [
                Difference(
                    code="reversal_mismatch",
                    message=(
                        f"item {item.id} is {_state(item)} and its reversal transfers "
                        f"{'are missing or wrong' if taken_back else 'exist'}"
                    ),
                    batch_id=item.batch_id,
                    item_id=item.id,
                )
            ]
    return []


def _paypal_differences(
    batch: PayoutBatch, items: list[PayoutItem], details: BatchDetails
) -> list[Difference]:
    out: list[Difference] = []
    theirs = {result.sender_item_id: result for result in details.items}
    ours = {item.sender_item_id for item in items}
    if details.header.sender_batch_id not in (None, batch.sender_batch_id):
        out.append(
            Difference(
                code="batch_id_mismatch",
                message=f"batch {batch.id}: PayPal's batch carries another sender_batch_id",
                batch_id=batch.id,
            )
        )
    for item in items:
        result = theirs.get(item.sender_item_id)
        if result is None:
            if item.status != "voided":
                out.append(
                    Difference(
                        code="item_missing_at_paypal",
                        message=f"item {item.id} is {item.status} and PayPal does not have it",
                        batch_id=batch.id,
                        item_id=item.id,
                    )
                )
            continue
        if result.amount != Money(item.amount_minor, item.currency):
            out.append(
                Difference(
                    code="amount_mismatch",
                    message=(
                        f"item {item.id}: ours {Money(item.amount_minor, item.currency)}, "
                        f"PayPal's {result.amount}"
                    ),
                    batch_id=batch.id,
                    item_id=item.id,
                )
            )
        if result.transaction_status not in _AGREES[_state(item)]:
            out.append(
                Difference(
                    code="item_status_mismatch",
                    message=(
                        f"item {item.id} is {_state(item)} here and "
                        f"{result.transaction_status.value} at PayPal"
                    ),
                    batch_id=batch.id,
                    item_id=item.id,
                )
            )
    for sender_item_id in sorted(str(s) for s in set(theirs) - ours):
        out.append(
            Difference(
                code="unknown_item_at_paypal",
                message=f"batch {batch.id}: PayPal has an item {sender_item_id} we do not",
                batch_id=batch.id,
            )
        )
    return out


def _clearing_differences(session: Session, pending: dict[str, int]) -> list[Difference]:
    """The clearing account holds, pending, exactly what pending items hold, and nothing posted."""
    out: list[Difference] = []
    for account, reference in ledger.list_accounts(session=session, kind=service.CLEARING_KIND):
        held = pending.get(account.currency, 0)
        if account.credits_pending != held or account.credits_posted != account.debits_posted:
            out.append(
                Difference(
                    code="clearing_mismatch",
                    message=(
                        f"{reference}: {account.credits_pending} pending "
                        f"(items hold {held}), posted credits {account.credits_posted} "
                        f"!= debits {account.debits_posted}"
                    ),
                )
            )
    return out


def _settlement_differences(session: Session, kept: dict[str, int]) -> list[Difference]:
    """The settlement account holds what PayPal paid and kept: the paid items' amounts, less
    those whose money came back."""
    out: list[Difference] = []
    for account, reference in ledger.list_accounts(session=session, kind=service.SETTLEMENT_KIND):
        held = account.credits_posted - account.debits_posted
        expected = kept.get(account.currency, 0)
        if held != expected or account.credits_pending or account.debits_pending:
            out.append(
                Difference(
                    code="settlement_balance_mismatch",
                    message=f"{reference}: holds {held} (pending {account.credits_pending}/"
                    f"{account.debits_pending}), paid items that stayed paid: {expected}",
                )
            )
    return out


def reconcile(
    *,
    database: Database,
    client: PayPalClient | None,
    progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:
    """Compare everything; PayPal is read only when ``client`` is given."""
    batches, items, parts = database.read(_load)
    report = ReconcileReport(batches=len(batches), items=sum(len(v) for v in items.values()))
    totals: dict[str, CurrencyTotals] = {}
    pending: dict[str, int] = {}
    kept: dict[str, int] = {}

    def check_ledger(session: Session) -> list[Difference]:
        out = [
            Difference(code="ledger", message=text)
            for text in ledger.find_discrepancies(session=session)
        ]
        for each in items.values():
            for item in each:
                out.extend(_ledger_differences(session, item, parts.get(item.id, [])))
        out.extend(_clearing_differences(session, pending))
        out.extend(_settlement_differences(session, kept))
        return out

    for each in items.values():
        for item in each:
            total = totals.setdefault(item.currency, CurrencyTotals(currency=item.currency))
            if service.is_taken_back(item):
                total.taken_back_items += 1
                total.taken_back_minor += item.amount_minor
            elif item.status == "paid":
                total.paid_items += 1
                total.paid_minor += item.amount_minor
                kept[item.currency] = kept.get(item.currency, 0) + item.amount_minor
            elif item.status == "pending":
                total.pending_items += 1
                total.pending_minor += item.amount_minor
                pending[item.currency] = pending.get(item.currency, 0) + item.amount_minor
            else:
                total.voided_items += 1
    report.differences.extend(database.read(check_ledger))

    for done, batch in enumerate(batches, start=1):
        if progress is not None:
            progress(done, len(batches))
        if batch.status == BatchStatus.PREPARED.value:
            if batch.attempts > 0:
                report.differences.append(
                    Difference(
                        code="batch_unconfirmed",
                        message=f"batch {batch.id} was sent ({batch.attempts} attempts) "
                        "and PayPal's id is not recorded yet",
                        batch_id=batch.id,
                    )
                )
            continue
        if batch.payout_batch_id is None:  # a batch PayPal refused
            continue
        if client is None:
            continue
        try:
            details = client.get_batch(batch.payout_batch_id)
        except PayPalNotFound:
            report.differences.append(
                Difference(
                    code="batch_missing_at_paypal",
                    message=f"batch {batch.id}: PayPal has no batch {batch.payout_batch_id}",
                    batch_id=batch.id,
                )
            )
            continue
        except PayPalError as error:
            report.differences.append(
                Difference(
                    code="paypal_unavailable",
                    message=f"batch {batch.id}: PayPal could not be read ({error.code})",
                    batch_id=batch.id,
                )
            )
            continue
        report.differences.extend(_paypal_differences(batch, items[batch.id], details))
    report.totals = [totals[c] for c in sorted(totals)]
    return report
