"""The ledger's rules as pure functions over immutable values. No database here.

Semantics follow TigerBeetle:

* an account has a currency (TigerBeetle's *ledger*), a kind (its *code*), two optional
  balance limits and four balances: debits and credits, each pending and posted;
* a transfer debits one account and credits another of the same currency by a positive
  integer amount of minor units. It is *single* (posted at once), *pending* (reserved, with
  an optional timeout), or it *posts* or *voids* a pending transfer: in full or in part for a
  post, in full for a void. A pending transfer resolves at most once;
* a transfer with ``linked=True`` is chained to the next one in the batch; a chain succeeds
  or fails as one;
* the transfer id is chosen by the client and is the idempotency key: the same id with the
  same fields returns the stored transfer, the same id with other fields is an error that
  names the field.

:func:`plan_transfers` takes the requests and the current state of everything they touch and
returns what to write. Applying the plan keeps, for every currency, the sum of all debits
equal to the sum of all credits, pending and posted alike, and never breaks a balance limit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID

from parrain.kit.errors import UnknownCurrency
from parrain.kit.money import MAX_MINOR_UNITS, validate_currency
from parrain.ledger.errors import (
    AccountNotFound,
    AccountsMustBeDifferent,
    AmountMustBePositive,
    AmountTooLarge,
    BalanceOverflow,
    ExceedsCredits,
    ExceedsDebits,
    ExceedsPendingAmount,
    InvalidTransfer,
    LedgerCurrencyMismatch,
    LedgerError,
    LinkedChainOpen,
    LinkedEventFailed,
    PendingTransferAlreadyPosted,
    PendingTransferAlreadyVoided,
    PendingTransferExpired,
    PendingTransferMismatch,
    PendingTransferNotFound,
    PendingTransferNotPending,
    TransferExistsOutsideChain,
    TransferExistsWithDifferentField,
    UnknownLedgerCurrency,
)

#: The kind given to the void that the expiry job writes for a timed-out pending transfer.
EXPIRY_KIND = "pending_expired"

#: The longest timeout of a pending transfer, in seconds (about 68 years): what the 32-bit
#: ``timeout_seconds`` column holds and far inside what a timestamp can reach.
MAX_TIMEOUT_SECONDS = 2**31 - 1


class Phase(enum.StrEnum):
    SINGLE = "single"
    PENDING = "pending"
    POST_PENDING = "post_pending"
    VOID_PENDING = "void_pending"


class PendingStatus(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Account:
    id: UUID
    currency: str
    kind: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def credit_balance(self) -> int:
        """Posted credits less posted debits: what a credit-normal account holds."""
        return self.credits_posted - self.debits_posted

    @property
    def available_credit(self) -> int:
        """What a credit-normal account can still pay out, pending debits counted."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def debit_balance(self) -> int:
        return self.debits_posted - self.credits_posted


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """What a client asks for. For a post or void, accounts, amount and currency may be
    left out (``None``): they come from the pending transfer; a post without an amount posts
    the full pending amount."""

    id: UUID
    kind: str
    debit_account_id: UUID | None = None
    credit_account_id: UUID | None = None
    amount: int | None = None
    currency: str | None = None
    phase: Phase = Phase.SINGLE
    pending_id: UUID | None = None
    timeout_seconds: int = 0
    linked: bool = False


@dataclass(frozen=True, slots=True)
class Transfer:
    """A stored transfer. ``status`` is set only on pending transfers and changes when they
    resolve; everything else never changes."""

    id: UUID
    kind: str
    debit_account_id: UUID
    credit_account_id: UUID
    amount: int
    currency: str
    phase: Phase
    pending_id: UUID | None
    timeout_seconds: int
    linked: bool
    created_at: datetime
    expires_at: datetime | None = None
    status: PendingStatus | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def __add__(self, other: Delta) -> Delta:
        return Delta(
            self.debits_pending + other.debits_pending,
            self.debits_posted + other.debits_posted,
            self.credits_pending + other.credits_pending,
            self.credits_posted + other.credits_posted,
        )

    def is_zero(self) -> bool:
        return not (
            self.debits_pending or self.debits_posted or self.credits_pending or self.credits_posted
        )


@dataclass(frozen=True, slots=True)
class Created:
    transfer: Transfer


@dataclass(frozen=True, slots=True)
class Replayed:
    """The transfer existed with the same fields: the original is returned, nothing changes."""

    transfer: Transfer


@dataclass(frozen=True, slots=True)
class Failed:
    error: LedgerError


Result = Created | Replayed | Failed


@dataclass(slots=True)
class Plan:
    """What :func:`plan_transfers` decided: a result per request and the writes to make."""

    results: list[Result] = field(default_factory=list)
    new_transfers: dict[UUID, Transfer] = field(default_factory=dict)
    resolved_pending: dict[UUID, PendingStatus] = field(default_factory=dict)
    deltas: dict[UUID, Delta] = field(default_factory=dict)
    accounts: dict[UUID, Account] = field(default_factory=dict)


def apply_delta(account: Account, delta: Delta) -> Account:
    # Positional construction: dataclasses.replace is several times slower on the hot path.
    return Account(
        account.id,
        account.currency,
        account.kind,
        account.debits_must_not_exceed_credits,
        account.credits_must_not_exceed_debits,
        account.debits_pending + delta.debits_pending,
        account.debits_posted + delta.debits_posted,
        account.credits_pending + delta.credits_pending,
        account.credits_posted + delta.credits_posted,
    )


def check_limits(account: Account, *, before: Account | None = None) -> None:
    """Raise if ``account`` breaks a balance limit or leaves the 64-bit range.

    ``before`` is the account as it was, to say in the error what was available.
    """
    balances = (
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )
    if max(balances) > MAX_MINOR_UNITS or min(balances) < 0:
        names = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
        name, value = next(
            (n, v) for n, v in zip(names, balances, strict=True) if not (0 <= v <= MAX_MINOR_UNITS)
        )
        # below zero only a bug could get: resolutions subtract what was reserved
        limit = "exceed 2^63-1" if value > 0 else "become negative"
        raise BalanceOverflow(
            f"account {account.id} {name} would {limit}", account_id=str(account.id)
        )
    if account.debits_must_not_exceed_credits and (
        account.debits_pending + account.debits_posted > account.credits_posted
    ):
        raise ExceedsCredits(
            f"account {account.id} ({account.kind}) does not hold enough to be debited",
            account_id=str(account.id),
            available=(before or account).available_credit,
        )
    if account.credits_must_not_exceed_debits and (
        account.credits_pending + account.credits_posted > account.debits_posted
    ):
        raise ExceedsDebits(
            f"account {account.id} ({account.kind}) cannot be credited past its debits",
            account_id=str(account.id),
        )


def lock_order(account_id: UUID) -> int:
    """The sort key of account ids for locking: the UUID's integer (the same order as
    comparing UUIDs, without a Python-level comparison per pair)."""
    return account_id.int


def referenced_account_ids(
    requests: Iterable[TransferRequest], pending: Mapping[UUID, Transfer]
) -> list[UUID]:
    """Every account a batch may touch, sorted: the order in which to lock them."""
    ids: set[UUID] = set()
    for request in requests:
        if request.debit_account_id is not None:
            ids.add(request.debit_account_id)
        if request.credit_account_id is not None:
            ids.add(request.credit_account_id)
        if request.pending_id is not None and request.pending_id in pending:
            target = pending[request.pending_id]
            ids.update((target.debit_account_id, target.credit_account_id))
    return sorted(ids, key=lock_order)


def chains(requests: Sequence[TransferRequest]) -> list[list[int]]:
    """Split a batch into chains of indexes; a request with ``linked`` joins the next one."""
    groups: list[list[int]] = []
    current: list[int] = []
    for index, request in enumerate(requests):
        current.append(index)
        if not request.linked:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


class _Overlay:
    """Accounts and transfers as a chain sees them, including its own earlier effects."""

    def __init__(self, plan: Plan, stored: Mapping[UUID, Transfer]) -> None:
        self.plan = plan
        self.stored = stored
        self.accounts: dict[UUID, Account] = {}
        self.deltas: dict[UUID, Delta] = {}
        self.transfers: dict[UUID, Transfer] = {}
        self.resolved: dict[UUID, PendingStatus] = {}

    # The lookups skip empty maps: hashing a UUID is a Python-level call, and for a single
    # new transfer most of these maps are empty.
    def account(self, account_id: UUID) -> Account | None:
        found = self.accounts.get(account_id) if self.accounts else None
        return found if found is not None else self.plan.accounts.get(account_id)

    def transfer(self, transfer_id: UUID) -> Transfer | None:
        found = (self.transfers and self.transfers.get(transfer_id)) or (
            self.plan.new_transfers and self.plan.new_transfers.get(transfer_id)
        )
        if not found:
            found = self.stored.get(transfer_id) if self.stored else None
        if found is None:
            return None
        status = (self.resolved and self.resolved.get(transfer_id)) or (
            self.plan.resolved_pending and self.plan.resolved_pending.get(transfer_id)
        )
        return replace(found, status=status) if status else found

    def move(self, account: Account, delta: Delta) -> None:
        updated = apply_delta(account, delta)
        check_limits(updated, before=account)
        key = account.id
        self.accounts[key] = updated
        earlier = self.deltas.get(key)
        self.deltas[key] = delta if earlier is None else earlier + delta

    def commit(self) -> None:
        self.plan.accounts.update(self.accounts)
        deltas = self.plan.deltas
        for account_id, delta in self.deltas.items():
            earlier = deltas.get(account_id)
            deltas[account_id] = delta if earlier is None else earlier + delta
        self.plan.new_transfers.update(self.transfers)
        self.plan.resolved_pending.update(self.resolved)


def plan_transfers(
    requests: Sequence[TransferRequest],
    *,
    accounts: Mapping[UUID, Account],
    stored: Mapping[UUID, Transfer],
    now: datetime,
) -> Plan:
    """Decide the outcome of each request, in order, and the writes that follow.

    ``accounts`` holds every account the requests and their pending transfers refer to (as
    locked); ``stored`` holds every already stored transfer whose id is a request id or a
    ``pending_id``. Nothing is changed in place.
    """
    plan = Plan(accounts=dict(accounts))
    if len(requests) == 1 and not requests[0].linked:
        # The most common batch (one transfer per commit): a chain of one, without the
        # chain bookkeeping, which costs as much as the rules here.
        plan.results.append(_plan_alone(requests[0], plan, stored, now))
        return plan
    open_chain = bool(requests) and requests[-1].linked
    groups = chains(requests)
    for number, group in enumerate(groups):
        if open_chain and number == len(groups) - 1:
            error: LedgerError = LinkedChainOpen(
                "the last transfer of the batch is linked to nothing: clear its linked flag"
            )
            plan.results.extend(Failed(error) for _ in group)
            continue
        plan.results.extend(_plan_chain([requests[i] for i in group], plan, stored, now))
    return plan


def _plan_chain(
    chain: list[TransferRequest], plan: Plan, stored: Mapping[UUID, Transfer], now: datetime
) -> list[Result]:
    overlay = _Overlay(plan, stored)
    outcomes: list[Result] = []
    for position, request in enumerate(chain):
        try:
            existing = overlay.transfer(request.id)
            if existing is not None:
                _require_same_fields(request, existing)
                outcomes.append(Replayed(existing))
                continue
            transfer = _apply(request, overlay, now)
            overlay.transfers[transfer.id] = transfer
            outcomes.append(Created(transfer))
        except LedgerError as error:
            failed: list[Result] = []
            for other in range(len(chain)):
                if other == position:
                    failed.append(Failed(error))
                else:
                    failed.append(
                        Failed(
                            LinkedEventFailed(
                                f"transfer {chain[other].id} was not applied: transfer "
                                f"{request.id} of its linked chain failed ({error.code})",
                                failed_transfer_id=str(request.id),
                                cause=error.code,
                            )
                        )
                    )
            return failed
    replayed = sum(isinstance(o, Replayed) for o in outcomes)
    if len(chain) > 1 and 0 < replayed < len(chain):
        first = next(o for o in outcomes if isinstance(o, Replayed))
        outside = TransferExistsOutsideChain(
            f"transfer {first.transfer.id} already exists outside this linked chain",
            transfer_id=str(first.transfer.id),
        )
        return [Failed(outside)] * len(chain)
    overlay.commit()
    return outcomes


def _plan_alone(
    request: TransferRequest, plan: Plan, stored: Mapping[UUID, Transfer], now: datetime
) -> Result:
    """:func:`_plan_chain` of a chain of one unlinked request: the same outcome and the
    same writes (a property test holds the two to each other)."""
    overlay = _Overlay(plan, stored)
    try:
        existing = overlay.transfer(request.id)
        if existing is not None:
            _require_same_fields(request, existing)
            return Replayed(existing)
        transfer = _apply(request, overlay, now)
    except LedgerError as error:
        return Failed(error)
    overlay.transfers[transfer.id] = transfer
    overlay.commit()
    return Created(transfer)


_COMPARED_FIELDS = (
    "kind",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "phase",
    "pending_id",
    "timeout_seconds",
)


def _require_same_fields(request: TransferRequest, existing: Transfer) -> None:
    for name in _COMPARED_FIELDS:
        asked = getattr(request, name)
        if asked is None and name in (
            "debit_account_id",
            "credit_account_id",
            "amount",
            "currency",
        ):
            continue  # left out on a post or void: taken from the pending transfer
        if asked != getattr(existing, name):
            raise TransferExistsWithDifferentField(
                f"transfer {request.id} already exists with a different {name}",
                transfer_id=str(request.id),
                field=name,
            )


def _check_amount(amount: int | None) -> int:
    if amount is None or isinstance(amount, bool) or not isinstance(amount, int):
        raise AmountMustBePositive("a transfer amount is a positive integer of minor units")
    if amount <= 0:
        raise AmountMustBePositive("a transfer amount must be greater than zero", amount=amount)
    if amount > MAX_MINOR_UNITS:
        raise AmountTooLarge(
            "a transfer amount cannot exceed 2^63-1 minor units", amount=str(amount)
        )
    return amount


def _load_account(overlay: _Overlay, account_id: UUID | None, side: str) -> Account:
    if account_id is None:
        raise InvalidTransfer(f"the {side} account is missing", field=f"{side}_account_id")
    account = overlay.account(account_id)
    if account is None:
        raise AccountNotFound(
            f"{side} account {account_id} does not exist", account_id=str(account_id), side=side
        )
    return account


def _apply(request: TransferRequest, overlay: _Overlay, now: datetime) -> Transfer:
    if not isinstance(request.kind, str) or not request.kind or len(request.kind) > 64:
        raise InvalidTransfer("a transfer kind is a short non-empty name", field="kind")
    timeout = request.timeout_seconds
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise InvalidTransfer("a timeout is a whole number of seconds", field="timeout_seconds")
    if timeout < 0:
        raise InvalidTransfer("a timeout cannot be negative", field="timeout_seconds")
    if timeout > MAX_TIMEOUT_SECONDS:
        raise InvalidTransfer(
            f"a timeout cannot exceed {MAX_TIMEOUT_SECONDS} seconds", field="timeout_seconds"
        )
    if request.phase in (Phase.SINGLE, Phase.PENDING):
        return _apply_new(request, overlay, now)
    return _apply_resolution(request, overlay, now)


def _apply_new(request: TransferRequest, overlay: _Overlay, now: datetime) -> Transfer:
    if request.pending_id is not None:
        raise InvalidTransfer(
            "only a post or a void refers to a pending transfer", field="pending_id"
        )
    if request.phase is Phase.SINGLE and request.timeout_seconds:
        raise InvalidTransfer("only a pending transfer can time out", field="timeout_seconds")
    amount = _check_amount(request.amount)
    try:
        currency = validate_currency(request.currency)
    except UnknownCurrency as error:
        raise UnknownLedgerCurrency(error.message, field="currency") from None
    if request.debit_account_id == request.credit_account_id:
        raise AccountsMustBeDifferent("a transfer must debit and credit two different accounts")
    debit = _load_account(overlay, request.debit_account_id, "debit")
    credit = _load_account(overlay, request.credit_account_id, "credit")
    for account in (debit, credit):
        if account.currency != currency:
            raise LedgerCurrencyMismatch(
                f"account {account.id} is in {account.currency}, the transfer in {currency}",
                account_id=str(account.id),
                account_currency=account.currency,
                transfer_currency=currency,
            )
    if request.phase is Phase.PENDING:
        overlay.move(debit, Delta(debits_pending=amount))
        overlay.move(credit, Delta(credits_pending=amount))
        expires = (
            now + timedelta(seconds=request.timeout_seconds) if request.timeout_seconds else None
        )
        status: PendingStatus | None = PendingStatus.PENDING
    else:
        overlay.move(debit, Delta(debits_posted=amount))
        overlay.move(credit, Delta(credits_posted=amount))
        expires, status = None, None
    return Transfer(
        id=request.id,
        kind=request.kind,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        currency=currency,
        phase=request.phase,
        pending_id=None,
        timeout_seconds=request.timeout_seconds,
        linked=request.linked,
        created_at=now,
        expires_at=expires,
        status=status,
    )


def _apply_resolution(request: TransferRequest, overlay: _Overlay, now: datetime) -> Transfer:
    if request.pending_id is None:
        raise InvalidTransfer("a post or a void must name its pending transfer", field="pending_id")
    if request.timeout_seconds:
        raise InvalidTransfer("only a pending transfer can time out", field="timeout_seconds")
    pending = overlay.transfer(request.pending_id)
    if pending is None:
        raise PendingTransferNotFound(
            f"pending transfer {request.pending_id} does not exist",
            pending_id=str(request.pending_id),
        )
    if pending.phase is not Phase.PENDING:
        raise PendingTransferNotPending(
            f"transfer {pending.id} is not a pending transfer", pending_id=str(pending.id)
        )
    expiring = request.phase is Phase.VOID_PENDING and request.kind == EXPIRY_KIND
    if pending.status is PendingStatus.POSTED:
        raise PendingTransferAlreadyPosted(
            f"pending transfer {pending.id} was already posted", pending_id=str(pending.id)
        )
    if pending.status is PendingStatus.VOIDED:
        raise PendingTransferAlreadyVoided(
            f"pending transfer {pending.id} was already voided", pending_id=str(pending.id)
        )
    if pending.status is PendingStatus.EXPIRED:
        raise PendingTransferExpired(
            f"pending transfer {pending.id} has expired", pending_id=str(pending.id)
        )
    is_due = pending.expires_at is not None and now >= pending.expires_at
    if is_due and not expiring:
        raise PendingTransferExpired(
            f"pending transfer {pending.id} timed out at {pending.expires_at}",
            pending_id=str(pending.id),
        )
    if expiring and not is_due:
        raise InvalidTransfer(f"pending transfer {pending.id} has not timed out yet", field="kind")
    for name, asked, actual in (
        ("debit_account_id", request.debit_account_id, pending.debit_account_id),
        ("credit_account_id", request.credit_account_id, pending.credit_account_id),
        ("currency", request.currency, pending.currency),
    ):
        if asked is not None and asked != actual:
            raise PendingTransferMismatch(
                f"pending transfer {pending.id} has a different {name}",
                pending_id=str(pending.id),
                field=name,
            )
    debit = _load_account(overlay, pending.debit_account_id, "debit")
    if request.phase is Phase.POST_PENDING:
        amount = pending.amount if request.amount is None else _check_amount(request.amount)
        if amount > pending.amount:
            raise ExceedsPendingAmount(
                f"cannot post {amount}: pending transfer {pending.id} holds {pending.amount}",
                pending_id=str(pending.id),
                pending_amount=pending.amount,
            )
        overlay.move(debit, Delta(debits_pending=-pending.amount, debits_posted=amount))
        credit = _load_account(overlay, pending.credit_account_id, "credit")
        overlay.move(credit, Delta(credits_pending=-pending.amount, credits_posted=amount))
        overlay.resolved[pending.id] = PendingStatus.POSTED
    else:
        amount = pending.amount
        if request.amount is not None and request.amount != pending.amount:
            raise PendingTransferMismatch(
                f"a void releases the whole pending amount ({pending.amount})",
                pending_id=str(pending.id),
                field="amount",
            )
        overlay.move(debit, Delta(debits_pending=-pending.amount))
        credit = _load_account(overlay, pending.credit_account_id, "credit")
        overlay.move(credit, Delta(credits_pending=-pending.amount))
        overlay.resolved[pending.id] = PendingStatus.EXPIRED if expiring else PendingStatus.VOIDED
    return Transfer(
        id=request.id,
        kind=request.kind,
        debit_account_id=pending.debit_account_id,
        credit_account_id=pending.credit_account_id,
        amount=amount,
        currency=pending.currency,
        phase=request.phase,
        pending_id=pending.id,
        timeout_seconds=0,
        linked=request.linked,
        created_at=now,
    )


def totals(accounts: Iterable[Account]) -> dict[str, Delta]:
    """Sum the four balances per currency. Balanced books have debits == credits in each."""
    sums: dict[str, Delta] = {}
    for account in accounts:
        sums[account.currency] = sums.get(account.currency, Delta()) + Delta(
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        )
    return sums


def is_balanced(accounts: Iterable[Account]) -> bool:
    return all(
        t.debits_pending == t.credits_pending and t.debits_posted == t.credits_posted
        for t in totals(accounts).values()
    )
