"""Ledger operations. Callers pass a session; nothing here commits.

``create_transfers`` is the one write path: lock the accounts (sorted ids), load what the
requests refer to, let :func:`postings.plan_transfers` decide, write the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id, new_id
from parrain.kit.money import Money, validate_currency
from parrain.ledger import repository
from parrain.ledger.errors import AccountExists, AccountNotFound, InvalidTransfer, LedgerError
from parrain.ledger.history import BalancePoint, replay
from parrain.ledger.postings import (
    EXPIRY_KIND,
    Account,
    Created,
    Delta,
    Failed,
    Phase,
    Replayed,
    Result,
    Transfer,
    TransferRequest,
    lock_order,
    plan_transfers,
    referenced_account_ids,
)
from parrain.ledger.schemas import AccountCreate

#: The most transfers one call accepts, as in TigerBeetle's batches.
MAX_BATCH = 8190


def create_account(
    *, session: Session, account_in: AccountCreate, clock: Clock, account_id: UUID | None = None
) -> Account:
    currency = validate_currency(account_in.currency)
    if account_in.reference is not None:
        existing = repository.get_account_by_reference(session, account_in.reference)
        if existing is not None:
            raise AccountExists(
                f"an account named {account_in.reference!r} already exists",
                reference=account_in.reference,
                account_id=str(existing.id),
            )
    account = Account(
        id=account_id or new_id(),
        currency=currency,
        kind=account_in.kind,
        debits_must_not_exceed_credits=account_in.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=account_in.credits_must_not_exceed_debits,
    )
    repository.insert_account(
        session, account, reference=account_in.reference, created_at=clock.now()
    )
    return account


def get_account(*, session: Session, account_id: UUID) -> Account:
    found = repository.get_accounts(session, [account_id]).get(account_id)
    if found is None:
        raise AccountNotFound(f"account {account_id} does not exist", account_id=str(account_id))
    return found


def get_account_reference(*, session: Session, account_id: UUID) -> str | None:
    """The account's stable name (``campaign:<id>:budget``), if it has one."""
    return repository.get_reference(session, account_id)


def find_account(*, session: Session, reference: str) -> Account | None:
    return repository.get_account_by_reference(session, reference)


def list_accounts(
    *, session: Session, currency: str | None = None, kind: str | None = None
) -> list[tuple[Account, str | None]]:
    return repository.list_accounts(session, currency=currency, kind=kind)


def create_transfers(
    *, session: Session, transfers: Sequence[TransferRequest], clock: Clock
) -> list[Result]:
    """Apply a batch; one result per request (created, replayed or failed).

    Chains marked ``linked`` succeed or fail as one; independent transfers fail alone.
    """
    if len(transfers) > MAX_BATCH:
        raise InvalidTransfer(f"a batch holds at most {MAX_BATCH} transfers", field="transfers")
    if not transfers:
        return []
    pending_ids = {t.pending_id for t in transfers if t.pending_id is not None}
    transfer_ids = {t.id for t in transfers} | pending_ids
    with repository.write_cursor(session) as cursor:
        if not pending_ids:
            # Nothing to post or void: the accounts are named by the requests. Lock them
            # (sorted), then read the transfer ids (idempotency keys): one round trip.
            locked = referenced_account_ids(transfers, {})
            accounts, stored = repository.lock_accounts_and_get_transfers(
                session, locked, transfer_ids, cursor=cursor
            )
        else:
            # The pending transfers name the accounts a post or void touches: read them
            # first, lock every account in sorted order, then read again under the locks
            # for a consistent view.
            early = repository.get_transfers(session, pending_ids, cursor=cursor)
            locked = referenced_account_ids(transfers, early)
            accounts = repository.lock_accounts(session, locked, cursor=cursor)
            stored = repository.get_transfers(session, transfer_ids, cursor=cursor)
            # A pending transfer committed by someone else after the first read names
            # accounts not locked yet: lock them too (a deadlock this may cause is retried
            # by the caller).
            missing = set(referenced_account_ids(transfers, stored)) - set(locked)
            if missing:
                accounts |= repository.lock_accounts(
                    session, sorted(missing, key=lock_order), cursor=cursor
                )
                stored = repository.get_transfers(session, transfer_ids, cursor=cursor)
        plan = plan_transfers(transfers, accounts=accounts, stored=stored, now=clock.now())
        if len(plan.new_transfers) == 1 and not plan.resolved_pending:
            # One new transfer: on PostgreSQL, the insert and both balance moves are one
            # statement.
            [created] = plan.new_transfers.values()
            repository.insert_transfer_and_move(session, created, plan.deltas, cursor=cursor)
        else:
            repository.insert_transfers(session, plan.new_transfers.values(), cursor=cursor)
            repository.set_pending_status(session, plan.resolved_pending, cursor=cursor)
            repository.apply_deltas(session, plan.deltas, cursor=cursor)
    return plan.results


def unwrap(result: Result) -> Transfer:
    """The transfer of a created or replayed result; raise the error of a failed one."""
    if isinstance(result, Failed):
        raise result.error
    return result.transfer


def _unwrap(results: Sequence[Result]) -> list[Transfer]:
    """Raise the first real error (not the 'linked event failed' echoes), else the transfers."""
    failures = [r.error for r in results if isinstance(r, Failed)]
    if failures:
        primary = next((e for e in failures if e.code != "linked_event_failed"), failures[0])
        raise primary
    return [r.transfer for r in results if isinstance(r, Created | Replayed)]


def create_transfer(*, session: Session, transfer: TransferRequest, clock: Clock) -> Transfer:
    """Apply one transfer or raise its typed error. A replay returns the original."""
    if transfer.linked:
        transfer = replace(transfer, linked=False)
    return _unwrap(create_transfers(session=session, transfers=[transfer], clock=clock))[0]


def create_linked(
    *, session: Session, transfers: Sequence[TransferRequest], clock: Clock
) -> list[Transfer]:
    """Apply transfers as one linked chain (all or nothing) or raise the error that failed it."""
    chain = [replace(t, linked=i < len(transfers) - 1) for i, t in enumerate(transfers)]
    return _unwrap(create_transfers(session=session, transfers=chain, clock=clock))


def create_chains(
    *, session: Session, chains: Sequence[Sequence[TransferRequest]], clock: Clock
) -> list[list[Transfer] | LedgerError]:
    """Apply several linked chains in one batch: for each chain, in order, its transfers
    (all applied) or the error that failed it (none applied), as :func:`create_linked` would
    return or raise it. A chain that fails leaves the others alone; the chains are planned
    in order, so an earlier chain's holds count against a later one's limits.

    Chains are sent :data:`MAX_BATCH` transfers at a time, never splitting a chain."""
    out: list[list[Transfer] | LedgerError] = []
    batch: list[TransferRequest] = []
    sizes: list[int] = []

    def flush() -> None:
        results = create_transfers(session=session, transfers=batch, clock=clock)
        start = 0
        for size in sizes:
            try:
                out.append(_unwrap(results[start : start + size]))
            except LedgerError as error:
                out.append(error)
            start += size
        batch.clear()
        sizes.clear()

    for chain in chains:
        if not chain:
            raise InvalidTransfer("a linked chain holds at least one transfer", field="transfers")
        if len(chain) > MAX_BATCH:
            raise InvalidTransfer(f"a batch holds at most {MAX_BATCH} transfers", field="transfers")
        if len(batch) + len(chain) > MAX_BATCH:
            flush()
        batch.extend(replace(t, linked=i < len(chain) - 1) for i, t in enumerate(chain))
        sizes.append(len(chain))
    if batch:
        flush()
    return out


def transfer(
    *,
    session: Session,
    transfer_id: UUID,
    debit_account_id: UUID,
    credit_account_id: UUID,
    amount: Money,
    kind: str,
    clock: Clock,
    pending: bool = False,
    timeout_seconds: int = 0,
) -> Transfer:
    """Move ``amount`` from one account to another (or reserve it, with ``pending``)."""
    return create_transfer(
        session=session,
        transfer=TransferRequest(
            id=transfer_id,
            kind=kind,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount.minor,
            currency=amount.currency,
            phase=Phase.PENDING if pending else Phase.SINGLE,
            timeout_seconds=timeout_seconds,
        ),
        clock=clock,
    )


def post_pending(
    *,
    session: Session,
    pending_id: UUID,
    clock: Clock,
    transfer_id: UUID | None = None,
    amount: int | None = None,
    kind: str = "post",
) -> Transfer:
    """Post a pending transfer, in full (``amount=None``) or in part; the rest is released.

    Without ``transfer_id`` the id is derived from the pending id, so posting twice is a
    replay of the first post rather than a second one.
    """
    return create_transfer(
        session=session,
        transfer=TransferRequest(
            id=transfer_id or derived_id("post", pending_id),
            kind=kind,
            amount=amount,
            phase=Phase.POST_PENDING,
            pending_id=pending_id,
        ),
        clock=clock,
    )


def void_pending(
    *,
    session: Session,
    pending_id: UUID,
    clock: Clock,
    transfer_id: UUID | None = None,
    kind: str = "void",
) -> Transfer:
    """Release a pending transfer in full."""
    return create_transfer(
        session=session,
        transfer=TransferRequest(
            id=transfer_id or derived_id("void", pending_id),
            kind=kind,
            phase=Phase.VOID_PENDING,
            pending_id=pending_id,
        ),
        clock=clock,
    )


def void_expired_pending(*, session: Session, clock: Clock, limit: int = 1000) -> list[Transfer]:
    """Void up to ``limit`` pending transfers whose timeout has passed (the expiry job).

    Each expiry writes a void transfer with a derived id, so a job that runs twice, or two
    jobs at once, expire each pending transfer exactly once.
    """
    due = repository.due_pending_ids(session, now=clock.now(), limit=limit)
    requests = [
        TransferRequest(
            id=derived_id("expire", pending_id),
            kind=EXPIRY_KIND,
            phase=Phase.VOID_PENDING,
            pending_id=pending_id,
        )
        for pending_id in due
    ]
    results = create_transfers(session=session, transfers=requests, clock=clock)
    return [r.transfer for r in results if isinstance(r, Created)]


def get_transfer(*, session: Session, transfer_id: UUID) -> Transfer | None:
    return repository.get_transfers(session, [transfer_id]).get(transfer_id)


def get_transfers(*, session: Session, transfer_ids: Sequence[UUID]) -> dict[UUID, Transfer]:
    """The stored transfers among ``transfer_ids``, by id (unknown ids are left out)."""
    return repository.get_transfers(session, transfer_ids) if transfer_ids else {}


def balance_totals(*, session: Session) -> dict[str, Delta]:
    return repository.balance_totals(session)


def find_discrepancies(*, session: Session) -> list[str]:
    """Compare each account's stored balances with those recomputed from its transfers, and
    the debits with the credits per currency. An empty list means the books are sound."""
    problems: list[str] = []
    for currency, total in sorted(repository.balance_totals(session).items()):
        if total.debits_posted != total.credits_posted:
            problems.append(
                f"{currency}: posted debits {total.debits_posted} != credits {total.credits_posted}"
            )
        if total.debits_pending != total.credits_pending:
            problems.append(
                f"{currency}: pending debits {total.debits_pending} "
                f"!= credits {total.credits_pending}"
            )
    recomputed = repository.recomputed_balances(session)
    for account, _ in repository.list_accounts(session):
        expected = recomputed.get(account.id, Delta())
        stored = Delta(
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        )
        if stored != expected:
            problems.append(f"account {account.id}: stored {stored} but transfers give {expected}")
    return problems


def balance_history(*, session: Session, account_id: UUID) -> list[BalancePoint]:
    """``account_id``'s balances after each instant it moved, replayed from its transfers
    (:mod:`parrain.ledger.history`); the last point equals its stored balances."""
    return replay(repository.account_movements(session, account_id))
