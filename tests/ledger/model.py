"""A reference model of the ledger for the property tests.

* :class:`Books` holds what the database would hold (accounts and transfers) as plain values
  and applies a batch through the pure ``plan_transfers``;
* :func:`account_specs` and :func:`draw_batch` generate a few accounts and batches that mix
  good requests with bad ones (pending with and without timeout, post in full or in part,
  void, expiry, linked chains, replays, reused ids with other fields, invalid amounts...);
* :func:`check_plan`, :func:`check_books` and :func:`check_replays` state the invariants
  without trusting ``postings.py``: balances are recomputed from the transfers, and a plan's
  deltas from the transfers it created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from hypothesis import strategies as st

from parrain.kit.money import MAX_MINOR_UNITS
from parrain.ledger.errors import LedgerError
from parrain.ledger.postings import (
    EXPIRY_KIND,
    Account,
    Created,
    Delta,
    Failed,
    PendingStatus,
    Phase,
    Plan,
    Replayed,
    Result,
    Transfer,
    TransferRequest,
    apply_delta,
    chains,
    is_balanced,
    plan_transfers,
)

CURRENCIES = ("GBP", "EUR", "JPY")
#: An account id that is never created.
UNKNOWN_ACCOUNT = UUID("00000000-0000-4000-8000-00000000dead")
#: Intents a generated request is drawn from; repeated entries make an intent more likely.
INTENTS = (
    *("single",) * 3,
    *("pending",) * 3,
    *("post",) * 2,
    "void",
    "expire",
    "replay",
    "conflict",
    "invalid",
    "repeat",
)
#: Intents whose chain must fail as a whole, whatever else it holds.
ALWAYS_FAIL = frozenset({"invalid", "conflict"})
#: Timeouts in seconds; the clock moves by some of these between batches.
TIMEOUTS = (0, 0, 10, 60)
CLOCK_STEPS = (0, 0, 5, 30, 61)


@dataclass
class Books:
    """The whole ledger as values: accounts, stored transfers, the requests that created
    them (to replay), and the time."""

    accounts: dict[UUID, Account]
    now: datetime
    transfers: dict[UUID, Transfer] = field(default_factory=dict)
    applied: dict[UUID, TransferRequest] = field(default_factory=dict)

    def plan(self, requests: list[TransferRequest]) -> Plan:
        return plan_transfers(requests, accounts=self.accounts, stored=self.transfers, now=self.now)

    def commit(self, requests: list[TransferRequest], plan: Plan) -> None:
        """Write the plan as the service does: new transfers, then statuses, then balances."""
        self.transfers.update(plan.new_transfers)
        for pending_id, status in plan.resolved_pending.items():
            self.transfers[pending_id] = replace(self.transfers[pending_id], status=status)
        self.accounts = dict(plan.accounts)
        for request, result in zip(requests, plan.results, strict=True):
            if isinstance(result, Created):
                self.applied[request.id] = replace(request, linked=False)


def make_account(account_id: UUID, currency: str, limit: str) -> Account:
    return Account(
        id=account_id,
        currency=currency,
        kind=f"test_{limit}",
        debits_must_not_exceed_credits=limit == "debits",
        credits_must_not_exceed_debits=limit == "credits",
    )


@st.composite
def account_specs(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(currency, limit) pairs: 2 or 3 currencies, each with an unlimited account and one or
    two more with no limit, ``debits`` (must not exceed credits) or ``credits``."""
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=3, unique=True))
    specs: list[tuple[str, str]] = []
    for currency in currencies:
        limits = draw(
            st.lists(st.sampled_from(("none", "debits", "credits")), min_size=1, max_size=2)
        )
        specs.extend((currency, limit) for limit in ("none", *limits))
    return specs


def _amounts(huge: bool) -> st.SearchStrategy[int]:
    # Round amounts repeat, so that other transfers often cover one exactly.
    small = st.one_of(st.integers(1, 1_000), st.sampled_from((10, 25, 100)))
    if not huge:
        return small
    # Near the 64-bit edge: a second one on the same account must overflow, not wrap.
    return st.one_of(small, small, small, st.sampled_from((2**62, MAX_MINOR_UNITS)))


def draw_batch(
    data: st.DataObject, books: Books, new_id: Callable[[], UUID], *, huge: bool = True
) -> list[tuple[str, TransferRequest]]:
    """One to five requests, each with the intent it was drawn for; about a third linked."""
    batch: list[tuple[str, TransferRequest]] = []
    size = data.draw(st.integers(1, 5), label="batch size")
    for position in range(size):
        intent = data.draw(st.sampled_from(INTENTS), label="intent")
        intent, request = _draw_request(data, intent, books, batch, new_id, huge)
        last = position == size - 1
        linked = data.draw(st.sampled_from((True, *(False,) * (9 if last else 2))), label="linked")
        batch.append((intent, replace(request, linked=linked)))
    return batch


def _draw_request(
    data: st.DataObject,
    intent: str,
    books: Books,
    batch: list[tuple[str, TransferRequest]],
    new_id: Callable[[], UUID],
    huge: bool,
) -> tuple[str, TransferRequest]:
    pendings = [t.id for t in books.transfers.values() if t.phase is Phase.PENDING]
    pendings += [r.id for _, r in batch if r.phase is Phase.PENDING and r.id not in pendings]
    open_pendings = [
        t.id for t in books.transfers.values() if t.status is PendingStatus.PENDING
    ] + [r.id for _, r in batch if r.phase is Phase.PENDING]
    targeted = [r.pending_id for _, r in batch if r.pending_id in pendings]
    if intent in ("post", "void", "expire") and not pendings:
        intent = "pending"
    if intent in ("replay", "conflict") and not books.applied:
        intent = "single"
    if intent == "repeat" and not batch:
        intent = "single"

    if intent in ("single", "pending"):
        debit, credit = _pair(data, books)
        phase = Phase.SINGLE if intent == "single" else Phase.PENDING
        timeout = data.draw(st.sampled_from(TIMEOUTS)) if phase is Phase.PENDING else 0
        request = TransferRequest(
            id=new_id(),
            kind=f"test_{intent}",
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=data.draw(_amounts(huge), label="amount"),
            currency=debit.currency,
            phase=phase,
            timeout_seconds=timeout,
        )
        return intent, request
    if intent in ("post", "void", "expire"):
        # Mostly one still open, often one this batch already resolves (twice is refused).
        pools = [p for p in (open_pendings, targeted, pendings) if p]
        pending_id = data.draw(
            st.one_of(*(st.sampled_from(pool) for pool in pools)), label="pending"
        )
        amount: int | None = None
        if intent == "post":
            held = _pending_amount(books, batch, pending_id)
            amount = data.draw(
                st.one_of(st.none(), st.integers(1, held), st.sampled_from((held, held + 1))),
                label="post amount",
            )
        request = TransferRequest(
            id=new_id(),
            kind={"post": "test_post", "void": "test_void", "expire": EXPIRY_KIND}[intent],
            amount=amount,
            phase=Phase.POST_PENDING if intent == "post" else Phase.VOID_PENDING,
            pending_id=pending_id,
        )
        return intent, request
    if intent == "replay":
        return intent, data.draw(st.sampled_from(list(books.applied.values())), label="replay")
    if intent == "conflict":
        original = data.draw(st.sampled_from(list(books.applied.values())), label="conflict")
        stored = books.transfers[original.id]
        changed = data.draw(st.sampled_from(("kind", "amount", "credit_account_id")))
        if changed == "kind":
            return intent, replace(original, kind=original.kind + "_other")
        if changed == "amount":
            return intent, replace(original, amount=stored.amount + 1)
        others = [a for a in books.accounts if a != stored.credit_account_id]
        return intent, replace(original, credit_account_id=data.draw(st.sampled_from(others)))
    if intent == "repeat":
        return intent, data.draw(st.sampled_from([r for _, r in batch]), label="repeat")
    return intent, _draw_invalid(data, books, pendings, new_id)


def _pair(data: st.DataObject, books: Books) -> tuple[Account, Account]:
    """Two different accounts of the same currency."""
    debit = data.draw(st.sampled_from(list(books.accounts.values())), label="debit")
    same = [a for a in books.accounts.values() if a.currency == debit.currency and a != debit]
    return debit, data.draw(st.sampled_from(same), label="credit")


def _pending_amount(
    books: Books, batch: list[tuple[str, TransferRequest]], pending_id: UUID
) -> int:
    if pending_id in books.transfers:
        return books.transfers[pending_id].amount
    amount = next(r.amount for _, r in batch if r.id == pending_id)
    return amount if isinstance(amount, int) and amount > 0 else 1


def _draw_invalid(
    data: st.DataObject, books: Books, pendings: list[UUID], new_id: Callable[[], UUID]
) -> TransferRequest:
    """A request that must fail whatever the balances are."""
    debit, credit = _pair(data, books)
    good = TransferRequest(
        id=new_id(),
        kind="test_invalid",
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=10,
        currency=debit.currency,
    )
    other_currency = next(a for a in books.accounts.values() if a.currency != debit.currency)
    flaw = data.draw(
        st.sampled_from(
            (
                "zero",
                "negative",
                "too_large",
                "other_currency",
                "unknown_currency",
                "mixed_accounts",
                "unknown_account",
                "same_account",
                "timeout_on_single",
                "negative_timeout",
                "huge_timeout",
                "unknown_pending",
                "post_without_pending",
                "void_other_amount",
                "empty_kind",
            )
        ),
        label="flaw",
    )
    match flaw:
        case "zero":
            return replace(good, amount=0)
        case "negative":
            return replace(good, amount=-data.draw(st.integers(1, 10**6)))
        case "too_large":
            return replace(good, amount=MAX_MINOR_UNITS + data.draw(st.integers(1, 10**6)))
        case "other_currency":
            return replace(good, currency=other_currency.currency)
        case "unknown_currency":
            return replace(good, currency="XXQ")
        case "mixed_accounts":
            return replace(good, credit_account_id=other_currency.id)
        case "unknown_account":
            side = data.draw(st.sampled_from(("debit_account_id", "credit_account_id")))
            return replace(good, **{side: UNKNOWN_ACCOUNT})
        case "same_account":
            return replace(good, credit_account_id=debit.id)
        case "timeout_on_single":
            return replace(good, timeout_seconds=30)
        case "negative_timeout":
            return replace(good, phase=Phase.PENDING, timeout_seconds=-1)
        case "huge_timeout":
            # Past what a timestamp (or a 32-bit column) can hold: refused, never a crash.
            timeout = data.draw(st.sampled_from((2**31, 10**12, 2**64)))
            return replace(good, phase=Phase.PENDING, timeout_seconds=timeout)
        case "unknown_pending":
            return TransferRequest(
                id=good.id, kind="test_post", phase=Phase.POST_PENDING, pending_id=new_id()
            )
        case "post_without_pending":
            return TransferRequest(id=good.id, kind="test_post", phase=Phase.POST_PENDING)
        case "void_other_amount" if pendings:
            pending_id = data.draw(st.sampled_from(pendings))
            return TransferRequest(
                id=good.id,
                kind="test_void",
                amount=-1,  # a void releases the whole pending amount, never another
                phase=Phase.VOID_PENDING,
                pending_id=pending_id,
            )
        case _:
            return replace(good, kind="")


# --- invariants ---------------------------------------------------------------------------


def movements(transfer: Transfer, lookup: Mapping[UUID, Transfer]) -> dict[UUID, Delta]:
    """What one stored transfer did to its two accounts, from first principles."""
    amount = transfer.amount
    if transfer.phase is Phase.SINGLE:
        debit, credit = Delta(debits_posted=amount), Delta(credits_posted=amount)
    elif transfer.phase is Phase.PENDING:
        debit, credit = Delta(debits_pending=amount), Delta(credits_pending=amount)
    else:
        held = lookup[transfer.pending_id].amount  # type: ignore[index]
        posted = amount if transfer.phase is Phase.POST_PENDING else 0
        debit = Delta(debits_pending=-held, debits_posted=posted)
        credit = Delta(credits_pending=-held, credits_posted=posted)
    return {transfer.debit_account_id: debit, transfer.credit_account_id: credit}


def recomputed_balances(transfers: Mapping[UUID, Transfer]) -> dict[UUID, Delta]:
    """Each account's balances from the transfers alone: single transfers and posts count as
    posted, a pending transfer counts as pending until it resolves, a void counts nothing."""
    balances: dict[UUID, Delta] = {}

    def add(account_id: UUID, delta: Delta) -> None:
        balances[account_id] = balances.get(account_id, Delta()) + delta

    for t in transfers.values():
        if t.phase in (Phase.SINGLE, Phase.POST_PENDING):
            add(t.debit_account_id, Delta(debits_posted=t.amount))
            add(t.credit_account_id, Delta(credits_posted=t.amount))
        elif t.phase is Phase.PENDING and t.status is PendingStatus.PENDING:
            add(t.debit_account_id, Delta(debits_pending=t.amount))
            add(t.credit_account_id, Delta(credits_pending=t.amount))
    return {k: v for k, v in balances.items() if not v.is_zero()}


def _resolution_status(resolution: Transfer) -> PendingStatus:
    if resolution.phase is Phase.POST_PENDING:
        return PendingStatus.POSTED
    return PendingStatus.EXPIRED if resolution.kind == EXPIRY_KIND else PendingStatus.VOIDED


def balances(account: Account) -> Delta:
    return Delta(
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )


def check_books(books: Books) -> None:
    """Debits equal credits per currency; no balance negative or past 2^63-1; no limit
    broken counting pending; stored balances equal those recomputed from the transfers; each
    pending transfer resolved at most once, its status saying how."""
    accounts = list(books.accounts.values())
    assert is_balanced(accounts)
    for account in accounts:
        for value in (
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ):
            assert 0 <= value <= MAX_MINOR_UNITS
        if account.debits_must_not_exceed_credits:
            assert account.debits_pending + account.debits_posted <= account.credits_posted
        if account.credits_must_not_exceed_debits:
            assert account.credits_pending + account.credits_posted <= account.debits_posted
    stored = {a.id: balances(a) for a in accounts if not balances(a).is_zero()}
    assert stored == recomputed_balances(books.transfers)
    resolutions = [t for t in books.transfers.values() if t.pending_id is not None]
    counts = Counter(t.pending_id for t in resolutions)
    assert all(n == 1 for n in counts.values()), counts
    by_pending = {t.pending_id: t for t in resolutions}
    for transfer in books.transfers.values():
        if transfer.phase is Phase.PENDING:
            resolution = by_pending.get(transfer.id)
            expected = (
                PendingStatus.PENDING if resolution is None else _resolution_status(resolution)
            )
            assert transfer.status is expected


def check_plan(
    before: Books, intents: list[str], requests: list[TransferRequest], plan: Plan
) -> None:
    """A chain succeeds or fails as one (and fails when it holds an invalid request); a
    pending transfer is resolved only while open, and expired only when due; the plan writes
    exactly the created transfers, the resolutions they make, and their movements."""
    assert len(plan.results) == len(requests)
    for group in chains(requests):
        outcomes = [type(plan.results[i]) for i in group]
        # All or nothing; and a chain sent again either replays whole or fails whole.
        assert len(set(outcomes)) == 1, [plan.results[i] for i in group]
        failed = [outcome is Failed for outcome in outcomes]
        if any(intents[i] in ALWAYS_FAIL for i in group):
            assert all(failed)
    for result in plan.results:
        if isinstance(result, Failed):
            assert isinstance(result.error, LedgerError)
            assert result.error.code not in ("ledger_error", "error")
    created = [r.transfer for r in plan.results if isinstance(r, Created)]
    assert list(plan.new_transfers) == [t.id for t in created]
    assert all(t.id not in before.transfers for t in created)
    lookup = {**before.transfers, **plan.new_transfers}
    # In request order, each resolution resolves a pending transfer still open; only the
    # expiry voids one that is due, and only one that is due.
    still_open = {t.id for t in before.transfers.values() if t.status is PendingStatus.PENDING}
    for transfer in created:
        if transfer.phase is Phase.PENDING:
            still_open.add(transfer.id)
        if transfer.pending_id is None:
            continue
        assert transfer.pending_id in still_open
        still_open.discard(transfer.pending_id)
        expires_at = lookup[transfer.pending_id].expires_at
        due = expires_at is not None and before.now >= expires_at
        assert due == (transfer.kind == EXPIRY_KIND and transfer.phase is Phase.VOID_PENDING)
    assert plan.resolved_pending == {
        t.pending_id: _resolution_status(t) for t in created if t.pending_id is not None
    }
    expected: dict[UUID, Delta] = {}
    for transfer in created:
        for account_id, delta in movements(transfer, lookup).items():
            expected[account_id] = expected.get(account_id, Delta()) + delta
    assert {k: v for k, v in plan.deltas.items() if not v.is_zero()} == {
        k: v for k, v in expected.items() if not v.is_zero()
    }
    assert plan.accounts == {
        k: apply_delta(a, expected.get(k, Delta())) for k, a in before.accounts.items()
    }
    for result in plan.results:
        if isinstance(result, Replayed):
            original = lookup[result.transfer.id]
            assert replace(result.transfer, status=None) == replace(original, status=None)


def check_replays(books: Books, results: list[Result] | None = None) -> Plan | None:
    """Every applied request sent again (same id, same fields) is ``Replayed`` with the
    stored transfer and changes nothing. With ``results`` (from the service), check those;
    otherwise plan the replays here and return the plan."""
    requests = list(books.applied.values())
    plan = None
    if results is None:
        plan = books.plan(requests)
        results = plan.results
        assert not plan.new_transfers
        assert not plan.resolved_pending
        assert all(d.is_zero() for d in plan.deltas.values())
        assert plan.accounts == books.accounts
    assert len(results) == len(requests)
    for request, result in zip(requests, results, strict=True):
        assert isinstance(result, Replayed), (request, result)
        assert result.transfer == books.transfers[request.id]
    return plan
