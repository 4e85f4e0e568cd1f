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

from parrain.payouts.service.common import (
    ATTENTION_TOPIC,
    CLEARING_KIND,
    EMAIL_SUBJECT,
    ITEM_NOTE,
    RECEIVER_PROBLEM_REASONS,
    RECEIVER_PROBLEMS,
    SETTLEMENT_KIND,
    SYSTEM_ACTOR,
    TAKEN_BACK_REASONS,
    TAKING_BACK,
    UNCLAIMED_VOID_AFTER,
    VOIDING,
    clearing_reference,
    hold_transfer_id,
    is_taken_back,
    recipient_type_of,
    reversal_transfer_id,
    sender_batch_id,
    settle_transfer_id,
    settlement_reference,
    system_account,
)
from parrain.payouts.service.prepare import (
    prepare_batches,
)
from parrain.payouts.service.reads import (
    BATCHES_PER_PAGE,
    ITEMS_PER_PAGE,
    BatchesPage,
    BatchSummary,
    ItemsPage,
    StateTotal,
    batch_summaries,
    batch_with_items,
    count_batches,
    in_flight,
    items_of_member,
)
from parrain.payouts.service.settle import (
    apply_batch,
    apply_item,
    release,
)
from parrain.payouts.service.submit import (
    Claim,
    build_request,
    claim_batch,
    deny_batch,
    record_attempt_failed,
    record_submitted,
)

__all__ = [
    "ATTENTION_TOPIC",
    "BATCHES_PER_PAGE",
    "CLEARING_KIND",
    "EMAIL_SUBJECT",
    "ITEMS_PER_PAGE",
    "ITEM_NOTE",
    "RECEIVER_PROBLEMS",
    "RECEIVER_PROBLEM_REASONS",
    "SETTLEMENT_KIND",
    "SYSTEM_ACTOR",
    "TAKEN_BACK_REASONS",
    "TAKING_BACK",
    "UNCLAIMED_VOID_AFTER",
    "VOIDING",
    "BatchSummary",
    "BatchesPage",
    "Claim",
    "ItemsPage",
    "StateTotal",
    "apply_batch",
    "apply_item",
    "batch_summaries",
    "batch_with_items",
    "build_request",
    "claim_batch",
    "clearing_reference",
    "count_batches",
    "deny_batch",
    "hold_transfer_id",
    "in_flight",
    "is_taken_back",
    "items_of_member",
    "prepare_batches",
    "recipient_type_of",
    "record_attempt_failed",
    "record_submitted",
    "release",
    "reversal_transfer_id",
    "sender_batch_id",
    "settle_transfer_id",
    "settlement_reference",
    "system_account",
]
