"""Names, ids, accounts and outcome sets the payout steps share (ADR 18, 19)."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account
from parrain.ledger.schemas import AccountCreate
from parrain.payouts.models import PayoutItem
from parrain.payouts.providers.paypal_wire import BatchStatus as PayPalBatchStatus
from parrain.payouts.providers.paypal_wire import (
    ItemStatus,
    RecipientType,
)
from parrain.payouts.schemas import ItemStatus as OurItemStatus

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
FINAL_BATCH = frozenset(
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
