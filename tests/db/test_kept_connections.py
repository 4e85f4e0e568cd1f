"""Write transactions reuse a few connections kept between them, and give them back.

``Database.transaction`` checks a connection out of the pool only when none is kept: the
next transaction gets the same one, an error sends it back to the pool instead, at most a
few are kept however many threads ran at once, ``pool_pre_ping`` keeps none, and
``dispose`` closes every one.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Connection, inspect
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database, UnitOfWork
from parrain.errors import ParrainError
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.ledger.models import LedgerAccount


def _connection(session: Session) -> Connection:
    assert isinstance(session, UnitOfWork)
    return session.unit_connection


def _driver_connection(session: Session) -> Any:
    return _connection(session).connection.driver_connection


def test_the_next_transaction_reuses_the_connection(database: Database) -> None:
    first = database.run(_connection)
    first_driver = database.run(_driver_connection)
    assert database.run(_connection) is first
    assert database.run(_driver_connection) is first_driver
    assert not first.closed


def test_a_failed_transaction_gives_its_connection_back_to_the_pool(database: Database) -> None:
    kept: list[Connection] = []

    def fails(session: Session) -> None:
        kept.append(_connection(session))
        raise ParrainError("refused")

    with pytest.raises(ParrainError):
        database.run(fails)
    assert kept[0].closed
    assert database.run(_connection) is not kept[0]


def test_dispose_closes_the_kept_connections(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url))
    connection = database.run(_connection)
    assert not connection.closed
    database.dispose()
    assert connection.closed


def test_pre_ping_keeps_no_connection(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url, pool_pre_ping=True))
    try:
        connection = database.run(_connection)
        assert connection.closed
    finally:
        database.dispose()


def test_threads_that_end_leave_at_most_a_few_connections_open(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url, pool_size=5))
    kept_at_most = 4 if database.dialect == "sqlite" else 5
    threads = 8
    # PostgreSQL: all eight transactions open at once. SQLite has one writer at a time
    # (BEGIN IMMEDIATE waits for the lock), so there the threads only overlap.
    everyone_in = threading.Barrier(threads if database.dialect == "postgresql" else 1)
    seen: list[Connection] = []

    def work(session: Session) -> None:
        seen.append(_connection(session))
        everyone_in.wait(timeout=30)

    def worker() -> None:
        for _ in range(3):
            database.run(work)

    running = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=60)
    try:
        assert len(seen) == 3 * threads
        used = {id(c): c for c in seen}.values()
        if database.dialect == "postgresql":
            assert len(used) >= threads  # they did run at the same time
        assert sum(not c.closed for c in used) <= kept_at_most
    finally:
        database.dispose()
    assert all(c.closed for c in used)


def test_orm_changes_are_flushed_committed_and_detached(
    database: Database, clock: FrozenClock
) -> None:
    account_id = new_id()

    def work(session: Session) -> LedgerAccount:
        account = LedgerAccount(
            id=account_id,
            currency="GBP",
            kind="test",
            reference=None,
            debits_must_not_exceed_credits=False,
            credits_must_not_exceed_debits=False,
            debits_pending=0,
            debits_posted=0,
            credits_pending=0,
            credits_posted=0,
            created_at=clock.now(),
        )
        session.add(account)  # never flushed by the work itself
        return account

    added = database.run(work)
    assert inspect(added).detached
    assert added.kind == "test"  # not expired by the commit
    found = database.read(lambda s: s.get(LedgerAccount, account_id))
    assert found is not None
    assert found.currency == "GBP"
