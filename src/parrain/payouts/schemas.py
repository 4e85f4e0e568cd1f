"""What payouts tell their callers: reports of the worker's steps and of a reconciliation."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class BatchStatus(StrEnum):
    PREPARED = "prepared"
    SUBMITTED = "submitted"
    SETTLED = "settled"
    DENIED = "denied"


class ItemStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    VOIDED = "voided"


class PrepareReport(BaseModel):
    """One collection of members' posted cash into new batches."""

    model_config = ConfigDict(frozen=True)

    batch_ids: list[UUID] = Field(default_factory=list)
    items: int = 0
    skipped_no_receiver: int = 0
    awaiting_receiver_fix: int = 0
    below_minimum: int = 0
    refused_by_ledger: int = 0


class SettleReport(BaseModel):
    """What one poll of a batch changed."""

    model_config = ConfigDict(frozen=True)

    paid: int = 0
    voided: int = 0
    waiting: int = 0
    #: Paid items whose money PayPal brought back (REFUNDED, REVERSED after SUCCESS).
    taken_back: int = 0
    batch_settled: bool = False


class RoundReport(BaseModel):
    """One round of the payout worker."""

    prepared_batches: int = 0
    prepared_items: int = 0
    skipped_no_receiver: int = 0
    awaiting_receiver_fix: int = 0
    below_minimum: int = 0
    submitted: int = 0
    recovered: int = 0
    submit_failures: int = 0
    denied: int = 0
    paid: int = 0
    voided: int = 0
    waiting: int = 0
    taken_back: int = 0
    in_flight_batches: int = 0


class Difference(BaseModel):
    """One thing on which our books and PayPal (or our tables and our ledger) disagree."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    batch_id: UUID | None = None
    item_id: UUID | None = None


class CurrencyTotals(BaseModel):
    currency: str
    paid_items: int = 0
    paid_minor: int = 0
    pending_items: int = 0
    pending_minor: int = 0
    voided_items: int = 0
    #: Paid, then brought back by PayPal (REFUNDED, REVERSED); not counted as paid.
    taken_back_items: int = 0
    taken_back_minor: int = 0


class ReconcileReport(BaseModel):
    batches: int = 0
    items: int = 0
    differences: list[Difference] = Field(default_factory=list)
    totals: list[CurrencyTotals] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


class WebhookOutcome(StrEnum):
    """What a verified PayPal notification led to."""

    #: What it names was read again from PayPal and PayPal's answer applied.
    APPLIED = "applied"
    #: A batch sent with its answer lost: PayPal's id for it is now recorded.
    RECOVERED = "recovered"
    #: It names no batch of ours (logged, acknowledged).
    UNKNOWN_BATCH = "unknown_batch"
    #: Our batch is not known to be at PayPal yet; the worker sends or recovers it.
    NOT_SUBMITTED = "not_submitted"
    #: Not a payouts event, or about a batch PayPal refused.
    IGNORED = "ignored"


class WebhookReceipt(BaseModel):
    """Our answer to PayPal's notification: ids and counts only."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="PayPal's id of the event.")
    event_type: str = Field(description="PayPal's event name.")
    outcome: WebhookOutcome
    paid: int = Field(default=0, description="Items found paid by the fresh read.")
    voided: int = Field(default=0, description="Items found refused or returned.")
    taken_back: int = Field(
        default=0, description="Paid items whose money PayPal brought back (REFUNDED, REVERSED)."
    )
