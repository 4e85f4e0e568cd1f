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


class ReconcileReport(BaseModel):
    batches: int = 0
    items: int = 0
    differences: list[Difference] = Field(default_factory=list)
    totals: list[CurrencyTotals] = Field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences
