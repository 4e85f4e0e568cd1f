"""Read-only views of the ledger: accounts, per-currency totals and a soundness check."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from parrain.kit.money import validate_currency
from parrain.ledger import service as ledger
from parrain.ledger.schemas import AccountRead
from parrain.web.deps import DatabaseDep, operator
from parrain.web.errors import error_responses

router = APIRouter(
    prefix="/ledger",
    tags=["ledger"],
    responses=error_responses(401, 403, 500),
    # Money is finance's to read (and the auditor's, and admins').
    dependencies=[operator("payouts.view")],
)


class CurrencyTotalsRead(BaseModel):
    currency: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balanced: bool = Field(description="Debits equal credits, pending and posted alike.")


class BalancesRead(BaseModel):
    balanced: bool = Field(description="Every currency is balanced.")
    currencies: list[CurrencyTotalsRead]


class LedgerCheckRead(BaseModel):
    sound: bool = Field(description="No discrepancy: stored balances match the transfers.")
    problems: list[str]


@router.get("/accounts/{account_id}", responses=error_responses(404, 422))
def get_ledger_account(account_id: UUID, database: DatabaseDep) -> AccountRead:
    def read(session: Session) -> AccountRead:
        account = ledger.get_account(session=session, account_id=account_id)
        reference = ledger.get_account_reference(session=session, account_id=account_id)
        return AccountRead.of(account, reference)

    return database.read(read)


@router.get("/accounts", responses=error_responses(422))
def list_ledger_accounts(
    database: DatabaseDep,
    currency: Annotated[
        str | None, Query(min_length=3, max_length=3, description="ISO 4217 code, e.g. GBP.")
    ] = None,
    kind: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="e.g. campaign_budget, operator_funding."),
    ] = None,
) -> list[AccountRead]:
    """Every account, optionally of one currency and one kind."""
    code = validate_currency(currency.upper()) if currency is not None else None
    accounts = database.read(
        lambda session: ledger.list_accounts(session=session, currency=code, kind=kind)
    )
    return [AccountRead.of(account, reference) for account, reference in accounts]


@router.get("/balances")
def ledger_balances(database: DatabaseDep) -> BalancesRead:
    """The sums of the four balance columns of every account, per currency."""
    totals = database.read(lambda session: ledger.balance_totals(session=session))
    currencies = [
        CurrencyTotalsRead(
            currency=currency,
            debits_pending=total.debits_pending,
            debits_posted=total.debits_posted,
            credits_pending=total.credits_pending,
            credits_posted=total.credits_posted,
            balanced=total.debits_pending == total.credits_pending
            and total.debits_posted == total.credits_posted,
        )
        for currency, total in sorted(totals.items())
    ]
    return BalancesRead(balanced=all(c.balanced for c in currencies), currencies=currencies)


@router.get("/check")
def check_ledger(database: DatabaseDep) -> LedgerCheckRead:
    """Recompute every balance from the transfers and compare with the stored ones."""
    problems = database.read(lambda session: ledger.find_discrepancies(session=session))
    return LedgerCheckRead(sound=not problems, problems=problems)
