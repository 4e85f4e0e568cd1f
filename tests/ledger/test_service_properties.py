"""Properties of the ledger service on the real database (SQLite, or PostgreSQL).

The same random batches as the pure properties go through ``create_transfers`` inside
``Database.run``, next to the pure reference model fed the same batches. After every batch:

* each result (created, replayed, failed and its code) is what the pure rules decide;
* the stored accounts and transfers read back equal the model's, limits hold counting pending;
* ``find_discrepancies`` is empty: stored balances equal balances recomputed from the
  transfers, and debits equal credits per currency.

At the end every applied request is sent again: all are replayed, nothing changes.

Each example opens its own accounts, so the examples can share the test's database.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.ledger import repository
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.postings import Delta, Failed, Result, TransferRequest
from parrain.ledger.schemas import AccountCreate
from tests.ledger.model import (
    CLOCK_STEPS,
    Books,
    account_specs,
    check_books,
    check_plan,
    check_replays,
    draw_batch,
)


def _outcome(result: Result) -> tuple[str, str | None]:
    return type(result).__name__, result.error.code if isinstance(result, Failed) else None


def _transfer_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(LedgerTransfer)) or 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_service_matches_the_rules_and_keeps_the_books(
    database: Database, clock: FrozenClock, data: st.DataObject
) -> None:
    specs = data.draw(account_specs(), label="accounts")

    def open_accounts(session: Session) -> Books:
        accounts = [
            ledger.create_account(
                session=session,
                account_in=AccountCreate(
                    currency=currency,
                    kind=f"test_{limit}",
                    debits_must_not_exceed_credits=limit == "debits",
                    credits_must_not_exceed_debits=limit == "credits",
                ),
                clock=clock,
            )
            for currency, limit in specs
        ]
        return Books(accounts={a.id: a for a in accounts}, now=clock.now())

    books = database.run(open_accounts)
    for _ in range(data.draw(st.integers(1, 6), label="batches")):
        clock.advance(timedelta(seconds=data.draw(st.sampled_from(CLOCK_STEPS), label="clock")))
        books.now = clock.now()
        # Amounts stay far from 2^63: the pure properties cover the 64-bit edge.
        batch = draw_batch(data, books, new_id, huge=False)
        intents = [intent for intent, _ in batch]
        requests = [request for _, request in batch]
        expected = books.plan(requests)
        check_plan(books, intents, requests, expected)

        results = database.run(
            lambda s, r=requests: ledger.create_transfers(session=s, transfers=r, clock=clock)
        )
        assert [_outcome(r) for r in results] == [_outcome(r) for r in expected.results]
        books.commit(requests, expected)
        check_books(books)

        def read_back(session: Session) -> tuple[object, object, list[str]]:
            return (
                repository.get_accounts(session, list(books.accounts)),
                repository.get_transfers(session, list(books.transfers)),
                ledger.find_discrepancies(session=session),
            )

        accounts, transfers, problems = database.read(read_back)
        assert accounts == books.accounts
        assert transfers == books.transfers
        assert problems == []
        # Each account's balances replayed from its transfers end where the stored ones are.
        histories = database.read(
            lambda s: {a: ledger.balance_history(session=s, account_id=a) for a in books.accounts}
        )
        for account_id, history in histories.items():
            stored = books.accounts[account_id]
            last = history[-1].balances if history else Delta()
            assert last == Delta(
                stored.debits_pending,
                stored.debits_posted,
                stored.credits_pending,
                stored.credits_posted,
            )
            assert [point.at for point in history] == sorted({point.at for point in history})

    rows_before = database.read(_transfer_rows)
    replays: list[TransferRequest] = list(books.applied.values())
    results = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=replays, clock=clock)
    )
    check_replays(books, results)
    assert database.read(lambda s: repository.get_accounts(s, list(books.accounts))) == (
        books.accounts
    )
    assert database.read(_transfer_rows) == rows_before
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []
