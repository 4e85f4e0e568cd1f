"""Batches to send in the tests."""

from __future__ import annotations

import hashlib

from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.payouts.providers.paypal_wire import PayoutBatchRequest, PayoutItemRequest


def item(
    receiver: str, minor: int = 2000, currency: str = "GBP", *, sender_item_id: str | None = None
) -> PayoutItemRequest:
    return PayoutItemRequest(
        receiver=Pii(receiver),
        amount=Money(minor, currency),
        sender_item_id=sender_item_id
        or f"item-{hashlib.sha256(receiver.encode()).hexdigest()[:12]}",
        note="Your Cash Rewards prize",
    )


def batch(sender_batch_id: str, *items: PayoutItemRequest) -> PayoutBatchRequest:
    return PayoutBatchRequest(
        sender_batch_id=sender_batch_id,
        items=list(items),
        email_subject="You have a payout!",
    )


def numbered_batch(sender_batch_id: str, count: int) -> PayoutBatchRequest:
    return PayoutBatchRequest(
        sender_batch_id=sender_batch_id,
        items=[
            PayoutItemRequest(
                receiver=Pii(f"member{n}@example.com"),
                amount=Money(100 + n, "EUR"),
                sender_item_id=f"reward-{n}",
            )
            for n in range(count)
        ],
    )
