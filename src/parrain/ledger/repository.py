"""Every query of the ledger. Core statements on the tables: the hot path stays lean."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from parrain.ledger.models import LedgerAccount, LedgerTransfer
from parrain.ledger.postings import Account, Delta, PendingStatus, Phase, Transfer

_accounts = cast(Table, LedgerAccount.__table__)
_transfers = cast(Table, LedgerTransfer.__table__)

_ACCOUNT_COLUMNS = (
    _accounts.c.id,
    _accounts.c.currency,
    _accounts.c.kind,
    _accounts.c.debits_must_not_exceed_credits,
    _accounts.c.credits_must_not_exceed_debits,
    _accounts.c.debits_pending,
    _accounts.c.debits_posted,
    _accounts.c.credits_pending,
    _accounts.c.credits_posted,
)


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        currency=row.currency,
        kind=row.kind,
        debits_must_not_exceed_credits=bool(row.debits_must_not_exceed_credits),
        credits_must_not_exceed_debits=bool(row.credits_must_not_exceed_debits),
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
    )


def _transfer(row: Any) -> Transfer:
    return Transfer(
        id=row.id,
        kind=row.kind,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        currency=row.currency,
        phase=Phase(row.phase),
        pending_id=row.pending_id,
        timeout_seconds=row.timeout_seconds,
        linked=bool(row.linked),
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=PendingStatus(row.status) if row.status is not None else None,
    )


def lock_accounts(session: Session, ids: Sequence[UUID]) -> dict[UUID, Account]:
    """Read and lock the accounts, in sorted id order (PostgreSQL row locks; a SQLite write
    transaction already holds the database lock)."""
    if not ids:
        return {}
    statement = (
        select(*_ACCOUNT_COLUMNS)
        .where(_accounts.c.id.in_(sorted(ids)))
        .order_by(_accounts.c.id)
        .with_for_update()
    )
    return {row.id: _account(row) for row in session.execute(statement)}


def get_accounts(session: Session, ids: Collection[UUID]) -> dict[UUID, Account]:
    if not ids:
        return {}
    statement = select(*_ACCOUNT_COLUMNS).where(_accounts.c.id.in_(list(ids)))
    return {row.id: _account(row) for row in session.execute(statement)}


def get_account_by_reference(session: Session, reference: str) -> Account | None:
    row = session.execute(
        select(*_ACCOUNT_COLUMNS).where(_accounts.c.reference == reference)
    ).first()
    return _account(row) if row is not None else None


def list_accounts(
    session: Session, *, currency: str | None = None, kind: str | None = None
) -> list[tuple[Account, str | None]]:
    statement = select(*_ACCOUNT_COLUMNS, _accounts.c.reference).order_by(_accounts.c.id)
    if currency is not None:
        statement = statement.where(_accounts.c.currency == currency)
    if kind is not None:
        statement = statement.where(_accounts.c.kind == kind)
    return [(_account(row), row.reference) for row in session.execute(statement)]


def insert_account(
    session: Session, account: Account, *, reference: str | None, created_at: datetime
) -> None:
    session.execute(
        insert(_accounts).values(
            id=account.id,
            currency=account.currency,
            kind=account.kind,
            reference=reference,
            debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.credits_must_not_exceed_debits,
            debits_pending=0,
            debits_posted=0,
            credits_pending=0,
            credits_posted=0,
            created_at=created_at,
        )
    )


def get_transfers(session: Session, ids: Collection[UUID]) -> dict[UUID, Transfer]:
    if not ids:
        return {}
    statement = select(_transfers).where(_transfers.c.id.in_(list(ids)))
    return {row.id: _transfer(row) for row in session.execute(statement)}


def insert_transfers(session: Session, transfers: Collection[Transfer]) -> None:
    if not transfers:
        return
    session.execute(
        insert(_transfers),
        [
            {
                "id": t.id,
                "kind": t.kind,
                "debit_account_id": t.debit_account_id,
                "credit_account_id": t.credit_account_id,
                "amount": t.amount,
                "currency": t.currency,
                "phase": t.phase.value,
                "pending_id": t.pending_id,
                "timeout_seconds": t.timeout_seconds,
                "linked": t.linked,
                "status": t.status.value if t.status is not None else None,
                "expires_at": t.expires_at,
                "created_at": t.created_at,
            }
            for t in transfers
        ],
    )


_set_status = (
    update(_transfers)
    .where(_transfers.c.id == bindparam("transfer_id"))
    .values(status=bindparam("new_status"))
)


def set_pending_status(session: Session, statuses: Mapping[UUID, PendingStatus]) -> None:
    if not statuses:
        return
    session.connection().execute(
        _set_status,
        [{"transfer_id": tid, "new_status": status.value} for tid, status in statuses.items()],
    )


_move = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account_id"))
    .values(
        debits_pending=_accounts.c.debits_pending + bindparam("d_dp"),
        debits_posted=_accounts.c.debits_posted + bindparam("d_dpo"),
        credits_pending=_accounts.c.credits_pending + bindparam("d_cp"),
        credits_posted=_accounts.c.credits_posted + bindparam("d_cpo"),
    )
)


def apply_deltas(session: Session, deltas: Mapping[UUID, Delta]) -> None:
    """Add each delta in the database (``x = x + d``): the CHECK constraints see the result."""
    rows = [
        {
            "account_id": account_id,
            "d_dp": d.debits_pending,
            "d_dpo": d.debits_posted,
            "d_cp": d.credits_pending,
            "d_cpo": d.credits_posted,
        }
        for account_id, d in sorted(deltas.items())
        if not d.is_zero()
    ]
    if rows:
        session.connection().execute(_move, rows)


def due_pending_ids(session: Session, *, now: datetime, limit: int) -> list[UUID]:
    statement = (
        select(_transfers.c.id)
        .where(_transfers.c.status == PendingStatus.PENDING.value)
        .where(_transfers.c.expires_at <= now)
        .order_by(_transfers.c.expires_at, _transfers.c.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def balance_totals(session: Session) -> dict[str, Delta]:
    """Per currency, the sum of each balance column over all accounts."""
    statement = select(
        _accounts.c.currency,
        func.coalesce(func.sum(_accounts.c.debits_pending), 0),
        func.coalesce(func.sum(_accounts.c.debits_posted), 0),
        func.coalesce(func.sum(_accounts.c.credits_pending), 0),
        func.coalesce(func.sum(_accounts.c.credits_posted), 0),
    ).group_by(_accounts.c.currency)
    return {
        row[0]: Delta(int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in session.execute(statement)
    }


def recomputed_balances(session: Session) -> dict[UUID, Delta]:
    """Every account's four balances recomputed from the transfers alone.

    A single transfer and a post count as posted; a pending transfer counts as pending until
    it resolves. Comparing this with the stored balances proves that no write was lost or
    applied twice.
    """
    balances: dict[UUID, Delta] = {}
    for side in ("debit", "credit"):
        account_column = _transfers.c[f"{side}_account_id"]
        statement = select(
            account_column, _transfers.c.phase, _transfers.c.status, func.sum(_transfers.c.amount)
        ).group_by(account_column, _transfers.c.phase, _transfers.c.status)
        for account_id, phase, status, amount in session.execute(statement):
            amount = int(amount)
            if phase in (Phase.SINGLE.value, Phase.POST_PENDING.value):
                delta = (
                    Delta(debits_posted=amount) if side == "debit" else Delta(credits_posted=amount)
                )
            elif phase == Phase.PENDING.value and status == PendingStatus.PENDING.value:
                delta = (
                    Delta(debits_pending=amount)
                    if side == "debit"
                    else Delta(credits_pending=amount)
                )
            else:
                continue
            balances[account_id] = balances.get(account_id, Delta()) + delta
    return balances
