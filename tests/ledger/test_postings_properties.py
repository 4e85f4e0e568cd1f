"""Properties of the pure ledger rules (``postings.py``), no database.

Random accounts in two or three currencies, with and without balance limits, receive random
batches (single, pending with and without timeout, posts in full and in part, voids,
expiries, linked chains, replays, reused ids, invalid requests) one batch at a time, each
plan feeding the next, while the clock moves. After every batch:

* debits equal credits per currency, pending and posted;
* no balance is negative or past 2^63-1, and no limit is broken counting pending;
* the stored balances equal those recomputed from the transfers;
* a linked chain succeeds or fails as one, and a failed one writes nothing at all;
* a pending transfer resolves at most once;
* every request applied so far, sent again, is ``Replayed`` and changes nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrain.kit.money import MAX_MINOR_UNITS
from parrain.ledger.errors import (
    AmountTooLarge,
    BalanceOverflow,
    ExceedsCredits,
    InvalidTransfer,
    LinkedChainOpen,
)
from parrain.ledger.postings import (
    Created,
    Failed,
    Phase,
    Plan,
    Result,
    TransferRequest,
    _plan_chain,
    plan_transfers,
)
from tests.ledger.model import (
    CLOCK_STEPS,
    Books,
    account_specs,
    check_books,
    check_plan,
    check_replays,
    draw_batch,
    make_account,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_batches_keep_the_books_balanced_and_within_limits(data: st.DataObject) -> None:
    counter = itertools.count(1)

    def new_id() -> UUID:
        return UUID(int=next(counter))

    specs = data.draw(account_specs(), label="accounts")
    accounts = [make_account(new_id(), currency, limit) for currency, limit in specs]
    books = Books(accounts={a.id: a for a in accounts}, now=START)
    for _ in range(data.draw(st.integers(1, 12), label="batches")):
        books.now += timedelta(seconds=data.draw(st.sampled_from(CLOCK_STEPS), label="clock"))
        batch = draw_batch(data, books, new_id)
        intents = [intent for intent, _ in batch]
        requests = [request for _, request in batch]
        plan = books.plan(requests)
        check_plan(books, intents, requests, plan)
        books.commit(requests, plan)
        check_books(books)
        check_replays(books)


def _outcome(result: Result) -> object:
    if isinstance(result, Failed):
        return (type(result.error), result.error.code, str(result.error))
    return result


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_batch_of_one_is_planned_exactly_as_a_chain_of_one(data: st.DataObject) -> None:
    """``plan_transfers`` plans a lone unlinked request on a shorter path: the same
    outcome and the same writes as the general chain planner, for every kind of request
    the random walk draws (new, pending, post, void, expiry, replay, conflict, invalid)."""
    counter = itertools.count(1)

    def new_id() -> UUID:
        return UUID(int=next(counter))

    specs = data.draw(account_specs(), label="accounts")
    accounts = [make_account(new_id(), currency, limit) for currency, limit in specs]
    books = Books(accounts={a.id: a for a in accounts}, now=START)
    for _ in range(data.draw(st.integers(1, 8), label="batches")):
        books.now += timedelta(seconds=data.draw(st.sampled_from(CLOCK_STEPS), label="clock"))
        batch = draw_batch(data, books, new_id)
        requests = [request for _, request in batch]
        for request in requests:
            alone = replace(request, linked=False)
            fast = plan_transfers(
                [alone], accounts=books.accounts, stored=books.transfers, now=books.now
            )
            general = Plan(accounts=dict(books.accounts))
            general.results.extend(_plan_chain([alone], general, books.transfers, books.now))
            assert [_outcome(r) for r in fast.results] == [_outcome(r) for r in general.results]
            assert fast.new_transfers == general.new_transfers
            assert fast.resolved_pending == general.resolved_pending
            assert fast.deltas == general.deltas
            assert fast.accounts == general.accounts
        plan = books.plan(requests)
        books.commit(requests, plan)


# A few facts the random walk reaches only by luck, stated with exact values.


def _books(*limits: str) -> Books:
    accounts = [make_account(UUID(int=i + 1), "GBP", limit) for i, limit in enumerate(limits)]
    return Books(accounts={a.id: a for a in accounts}, now=START)


def _move(books: Books, debit: int, credit: int, amount: int, **fields: object) -> Failed | None:
    request = TransferRequest(
        id=UUID(int=1000 + len(books.transfers)),
        kind="test",
        debit_account_id=UUID(int=debit),
        credit_account_id=UUID(int=credit),
        amount=amount,
        currency="GBP",
        **fields,  # type: ignore[arg-type]
    )
    plan = books.plan([request])
    check_plan(books, ["single"], [request], plan)
    books.commit([request], plan)
    check_books(books)
    [result] = plan.results
    return result if isinstance(result, Failed) else None


def test_a_balance_never_wraps_past_2_63() -> None:
    books = _books("none", "none")
    assert _move(books, 1, 2, MAX_MINOR_UNITS) is None
    failed = _move(books, 1, 2, 1)
    assert failed is not None
    assert isinstance(failed.error, BalanceOverflow)
    assert failed.error.code == "balance_overflow"
    assert books.accounts[UUID(int=2)].credits_posted == MAX_MINOR_UNITS


def test_an_amount_past_2_63_is_refused_before_any_sum() -> None:
    failed = _move(_books("none", "none"), 1, 2, 2**63)
    assert failed is not None
    assert isinstance(failed.error, AmountTooLarge)


def test_pending_debits_count_against_the_limit() -> None:
    books = _books("none", "debits", "none")
    assert _move(books, 1, 2, 1_000) is None  # account 2 now holds 1,000
    assert _move(books, 2, 3, 700, phase=Phase.PENDING) is None
    failed = _move(books, 2, 3, 301)
    assert failed is not None
    assert isinstance(failed.error, ExceedsCredits)
    assert failed.error.details["available"] == 300
    assert _move(books, 2, 3, 300) is None
    assert books.accounts[UUID(int=2)].available_credit == 0


@pytest.mark.parametrize("timeout", [-1, 2**31, 10**12, 2**64])
def test_a_timeout_out_of_range_is_refused_not_a_crash(timeout: int) -> None:
    failed = _move(_books("none", "none"), 1, 2, 10, phase=Phase.PENDING, timeout_seconds=timeout)
    assert failed is not None
    assert isinstance(failed.error, InvalidTransfer)
    assert failed.error.details["field"] == "timeout_seconds"


def test_an_open_chain_at_the_end_of_a_batch_fails_alone() -> None:
    books = _books("none", "none")
    requests = [
        TransferRequest(
            id=UUID(int=100 + i),
            kind="test",
            debit_account_id=UUID(int=1),
            credit_account_id=UUID(int=2),
            amount=5,
            currency="GBP",
            linked=i == 1,
        )
        for i in range(2)
    ]
    plan = books.plan(requests)
    check_plan(books, ["single", "single"], requests, plan)
    assert isinstance(plan.results[0], Created)
    assert isinstance(plan.results[1], Failed)
    assert isinstance(plan.results[1].error, LinkedChainOpen)
    assert plan.accounts[UUID(int=2)].credits_posted == 5


def test_a_pending_transfer_resolves_once_even_twice_in_one_batch() -> None:
    books = _books("none", "none")
    assert _move(books, 1, 2, 10, phase=Phase.PENDING) is None
    assert _move(books, 1, 2, 10, phase=Phase.PENDING) is None  # covers a second release
    [first, _] = books.transfers
    resolutions = [
        TransferRequest(id=UUID(int=50), kind="post", phase=Phase.POST_PENDING, pending_id=first),
        TransferRequest(id=UUID(int=51), kind="void", phase=Phase.VOID_PENDING, pending_id=first),
    ]
    plan = books.plan(resolutions)
    check_plan(books, ["post", "void"], resolutions, plan)
    assert isinstance(plan.results[0], Created)
    assert isinstance(plan.results[1], Failed)
    assert plan.results[1].error.code == "pending_transfer_already_posted"
    books.commit(resolutions, plan)
    check_books(books)
    assert books.accounts[UUID(int=1)].debits_pending == 10
    assert books.accounts[UUID(int=1)].debits_posted == 10
