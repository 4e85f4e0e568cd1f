"""Pydantic shapes of the ledger for the web and CLI edges."""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parrain.ledger.postings import Account, Transfer


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. GBP.")
    kind: str = Field(min_length=1, max_length=64, description="What the account is for.")
    reference: str | None = Field(
        default=None, max_length=200, description="A unique stable name, e.g. 'funding:GBP'."
    )
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if self.debits_must_not_exceed_credits and self.credits_must_not_exceed_debits:
            raise ValueError("an account takes at most one balance limit")
        return self


class AccountRead(BaseModel):
    id: UUID
    currency: str
    kind: str
    reference: str | None = Field(
        default=None, description="The account's stable name, e.g. campaign:<id>:budget."
    )
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @classmethod
    def of(cls, account: Account, reference: str | None = None) -> AccountRead:
        return cls(
            id=account.id,
            currency=account.currency,
            kind=account.kind,
            reference=reference,
            debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.credits_must_not_exceed_debits,
            debits_pending=account.debits_pending,
            debits_posted=account.debits_posted,
            credits_pending=account.credits_pending,
            credits_posted=account.credits_posted,
        )


class TransferRead(BaseModel):
    id: UUID
    kind: str
    debit_account_id: UUID
    credit_account_id: UUID
    amount: int
    currency: str
    phase: str
    pending_id: UUID | None
    status: str | None
    expires_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, transfer: Transfer) -> TransferRead:
        return cls(
            id=transfer.id,
            kind=transfer.kind,
            debit_account_id=transfer.debit_account_id,
            credit_account_id=transfer.credit_account_id,
            amount=transfer.amount,
            currency=transfer.currency,
            phase=transfer.phase.value,
            pending_id=transfer.pending_id,
            status=transfer.status.value if transfer.status is not None else None,
            expires_at=transfer.expires_at,
            created_at=transfer.created_at,
        )
