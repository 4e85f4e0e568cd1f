"""``Database.read_statements``: read-only work whose statements each see their own snapshot.

On PostgreSQL it runs in autocommit on a few kept connections (no ``BEGIN``/``ROLLBACK``
round trips, no pool check-out); on SQLite it is ``Database.read``. Either way it is
read-only for the code that asks (``is_read_only``), an error gives its connection back to
the pool, and ``dispose`` closes what is kept.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from parrain.db.session import Database, is_read_only
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.ledger.schemas import AccountCreate

_COUNT = text("SELECT count(*) FROM ledger_accounts")


def _open_account(database: Database, clock: FrozenClock, reference: str) -> None:
    database.run(
        lambda s: ledger.create_account(
            session=s,
            account_in=AccountCreate(currency="GBP", kind="test", reference=reference),
            clock=clock,
        )
    )


def test_each_statement_sees_what_was_committed_before_it(
    database: Database, clock: FrozenClock, backend: str
) -> None:
    """The contract: a commit between two statements is seen by the second (on SQLite the
    work is one deferred read transaction, and no writer can commit between its statements
    in this test's thread)."""

    def work(session: Session) -> tuple[int, int, bool]:
        before = int(session.execute(_COUNT).scalar_one())
        if backend == "postgresql":
            _open_account(database, clock, "between")
        after = int(session.execute(_COUNT).scalar_one())
        return before, after, is_read_only(session)

    before, after, read_only = database.read_statements(work)
    assert read_only
    assert after == before + (1 if backend == "postgresql" else 0)


def test_on_postgresql_no_transaction_is_opened(database: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite's read_statements is Database.read (a deferred transaction)")
    query = text("SELECT transaction_timestamp() = statement_timestamp(), pg_backend_pid()")

    def twice(session: Session) -> list[tuple[bool, int]]:
        return [tuple(session.execute(query).one()) for _ in range(2)]  # type: ignore[misc]

    first, second = database.read_statements(twice)
    # In autocommit each statement is its own transaction: it started with the statement.
    assert first[0]
    assert second[0]
    # The next call runs on the connection kept from this one.
    [again, _] = database.read_statements(twice)
    assert again[1] == first[1]


def test_an_error_gives_the_connection_back_and_the_next_call_works(
    database: Database, backend: str
) -> None:
    def fails(session: Session) -> None:
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        database.read_statements(fails)
    assert database.read_statements(lambda s: int(s.execute(text("SELECT 1")).scalar_one())) == 1


def test_dispose_closes_the_kept_statement_connections(database_url: str, backend: str) -> None:
    from parrain.config import DatabaseSettings

    database = Database(DatabaseSettings(url=database_url))
    database.read_statements(lambda s: s.execute(text("SELECT 1")))
    kept = list(database._kept_statements)
    assert len(kept) == (1 if backend == "postgresql" else 0)
    database.dispose()
    assert all(k.connection.closed for k in kept)
    assert database._kept_statements == []
